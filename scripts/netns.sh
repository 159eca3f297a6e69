#!/usr/bin/env bash
# Sourced by the test rigs that start a second dockerd (engine.sh gpu-stub, remote-engine.sh): a network namespace
# of its own, so that engine never touches the host's docker0, routes or iptables chains (a dockerd in the host's
# namespace started with --bridge none deletes docker0 and breaks every container of the main engine).
#   ensure_netns NAME HOST_IF NS_IF NET HOST_IP NS_IP   the namespace with lo up, and a veth pair in the /30 NET
#       through which the host forwards and masquerades its traffic (DNS included: /etc/resolv.conf's nameserver is
#       reached through the default route like any other host)
#   in_netns NAME PID   whether process PID lives in that namespace

ensure_netns() {
  local ns=$1 host_if=$2 ns_if=$3 net=$4 host_ip=$5 ns_ip=$6
  [ -e "/run/netns/$ns" ] || ip netns add "$ns"
  ip -n "$ns" link set lo up
  if ! ip link show "$host_if" >/dev/null 2>&1; then
    ip link add "$host_if" type veth peer name "$ns_if" netns "$ns"
  fi
  ip addr replace "$host_ip/30" dev "$host_if" && ip link set "$host_if" up
  ip -n "$ns" addr replace "$ns_ip/30" dev "$ns_if" && ip -n "$ns" link set "$ns_if" up
  ip -n "$ns" route replace default via "$host_ip"
  sysctl -qw net.ipv4.ip_forward=1
  # The main dockerd sets the FORWARD policy to DROP: let the namespace's traffic through explicitly.
  iptables -t nat -C POSTROUTING -s "$net" ! -o "$host_if" -j MASQUERADE 2>/dev/null ||
    iptables -t nat -A POSTROUTING -s "$net" ! -o "$host_if" -j MASQUERADE
  iptables -C FORWARD -i "$host_if" -j ACCEPT 2>/dev/null || iptables -I FORWARD -i "$host_if" -j ACCEPT
  iptables -C FORWARD -o "$host_if" -j ACCEPT 2>/dev/null || iptables -I FORWARD -o "$host_if" -j ACCEPT
}

in_netns() {
  [ "$(ip netns identify "$2" 2>/dev/null)" = "$1" ]
}
