#!/usr/bin/env bash
# A one-node Slurm cluster on this machine for the tests: munge, slurmctld and slurmd from Debian, a fake GPU
# (GRES gpu:fake:1 on /dev/null; Slurm needs no hardware to schedule it). Idempotent: does nothing when the
# controller already answers. Prints the partition's name.
set -euo pipefail
if ! command -v sbatch >/dev/null || ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  echo "[slurm] installing slurmctld, slurmd, slurm-client and munge (about 20 s)" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurmctld slurmd slurm-client munge >/dev/null
fi
if scontrol ping 2>/dev/null | grep -q "is UP"; then
  echo gpu
  exit 0
fi
node="$(hostname -s)"
cpus="$(nproc)"
memory="$(awk '/MemTotal/ {print int($2 / 1024 * 0.8)}' /proc/meminfo)"
mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/munge
cat > /etc/slurm/slurm.conf <<CONF
# Written by rasa-gpu's scripts/slurm.sh: a one-node test cluster with one fake GPU.
ClusterName=rasa-gpu-test
SlurmctldHost=${node}
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmdSpoolDir=/var/spool/slurmd
StateSaveLocation=/var/spool/slurmctld
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
SlurmUser=root
GresTypes=gpu
NodeName=${node} CPUs=${cpus} RealMemory=${memory} Gres=gpu:fake:1 State=UNKNOWN
PartitionName=gpu Nodes=${node} Default=YES MaxTime=INFINITE State=UP
CONF
cat > /etc/slurm/gres.conf <<CONF
AutoDetect=off
NodeName=${node} Name=gpu Type=fake File=/dev/null
CONF
[ -s /etc/munge/munge.key ] || { mungekey --create 2>/dev/null || dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 2>/dev/null; }
chown munge:munge /etc/munge/munge.key /run/munge 2>/dev/null || true
chmod 0400 /etc/munge/munge.key
pgrep -x munged >/dev/null || su -s /bin/sh munge -c munged 2>/dev/null || munged --force
pgrep -x slurmctld >/dev/null || slurmctld
pgrep -x slurmd >/dev/null || slurmd
for _ in $(seq 1 50); do
  if scontrol ping 2>/dev/null | grep -q "is UP" && sinfo -h -o %T 2>/dev/null | grep -qE "idle|mix|alloc"; then
    echo gpu
    exit 0
  fi
  sleep 0.2
done
echo "[slurm] the controller did not come up; see /var/log/slurm/" >&2
exit 1
