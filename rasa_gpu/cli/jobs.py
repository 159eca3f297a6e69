"""`rasa-gpu submit`: a training queued on a cluster; `rasa-gpu jobs`: the queue view, cancel, logs."""

from __future__ import annotations

import sys

import click

from ._common import (
    ImageOptions,
    LazyChoice,
    PassesToRasa,
    bot_argument,
    cpus_option,
    dry_run_option,
    follow_option,
    force_option,
    gpu_count_option,
    image_options,
    json_option,
    load,
    memory_option,
    renamed_option,
)


@click.command(cls=PassesToRasa)
@bot_argument
@click.option(
    "--to", "scheduler", type=LazyChoice("rasa_gpu.queues", "NAMES"), default="slurm", show_default=True
)
@click.option("--partition", help="Slurm partition ([slurm] partition in rasa-gpu.toml).")
@click.option("--account", help="Slurm account to charge.")
@click.option("--time", "time_limit", metavar="LIMIT", help="Time limit: minutes, HH:MM:SS or D-HH:MM.")
@gpu_count_option
@renamed_option("--gpus", "--gpu-count", "--gpus names GPU devices, as in train", type=click.IntRange(0))
@cpus_option
@memory_option
@force_option
@click.option("--wait", is_flag=True, help="Follow the job until it ends and show its output.")
@dry_run_option
@image_options
def submit(
    bot: str,
    rasa_args: tuple[str, ...],
    scheduler: str,
    partition: str | None,
    account: str | None,
    time_limit: str | None,
    gpu_count: int | None,
    gpus: int | None,
    cpus: float | None,
    memory: str | None,
    force: bool,
    wait: bool,
    dry_run: bool,
    image: ImageOptions,
) -> None:
    """Queue a training of BOT on a Slurm cluster; prints the job id at once. The job runs `rasa-gpu train` on a
    node with the GPUs Slurm gives it; the model lands in BOT/models/. BOT and this rasa-gpu must be on the
    cluster's shared filesystem.

    Arguments after -- go to `rasa train` on the node.

    \b
    Examples:
      rasa-gpu submit example_bot --to slurm --partition gpu --time 30 --gpu-count 2
      rasa-gpu submit example_bot --wait
    """
    from .. import jobs, queues
    from ..errors import SettingsError
    from ..events import Notice
    from ..settings import Settings
    from ._common import err, out, show_notice

    if cpus is not None and not cpus.is_integer():
        raise SettingsError(
            f"--cpus: a queued job gets whole CPUs, not {cpus:g}; e.g. --cpus {max(1, round(cpus))}"
        )
    given = Settings(
        slurm_partition=partition,
        slurm_account=account,
        resources_time=time_limit,
        resources_gpus=gpu_count if gpu_count is not None else gpus,
        resources_cpus=None if cpus is None else int(cpus),
        resources_memory=memory,
    )
    resolved = load(bot, image, given)
    s = resolved.settings
    renamed = s.renamed_tables()
    if renamed:
        show_notice(Notice(renamed, "warn"))
    queue = queues.named(scheduler, s)  # a setting the queue cannot carry stops here
    request = queues.Request(
        resolved.project,
        train_args=(
            *image.train_args(),
            *(("--force",) if force else ()),
            *(("--", *rasa_args) if rasa_args else ()),
        ),
        rasa_args=rasa_args,
        environment=image.train_environment(),
        spec=resolved.spec,
    )
    prepared = jobs.prepare(queue, request, dry_run=dry_run or not queue.submits_itself)
    if dry_run or not queue.submits_itself:
        sys.stdout.write(prepared.text)
        if not dry_run:
            try:
                queue.submit(prepared)
            except queues.QueueUnsupported as exc:  # what to do with the text instead
                err.print(exc.message, markup=False)
        return
    resolved.license()  # a Rasa Pro bot without a license stops here, not on the node
    record = jobs.submit(queue, prepared)
    output = jobs.output_path(resolved.project, record)
    finished: dict[str, queues.JobState] = {}

    def done() -> bool:
        state = jobs.state_of(record)
        if state is None or state.ended_now:
            finished["state"] = state or queues.JobState(record.job_id, "unknown", "UNKNOWN")
            return True
        return False

    try:  # from here on the job is in the queue, whenever Ctrl+C comes
        out.print(f"{record.ref}", markup=False)
        err.print(
            f"submitted {resolved.project.name} to {queue.title} as job {record.job_id}; output: {output}"
        )
        if not wait:
            return
        # The node's output, marked as such (its error line too).
        for line in jobs.follow(output, done):
            err.print(f"  │ {line}", markup=False, highlight=False)
    except KeyboardInterrupt:
        from ..errors import Interrupted

        raise Interrupted(
            f"stopped following job {record.job_id}, which goes on in {queue.title}'s queue: "
            f"`rasa-gpu jobs cancel {record.job_id} {bot}` ends it"
        ) from None
    cause = jobs.cause(resolved.project, record)
    state = finished["state"]
    if cause or state.state != "done" or (state.exit_code or 0) != 0:
        from ..errors import TrainingFailed

        raise TrainingFailed(
            f"job {record.job_id} {state.state if state.state != 'done' else 'failed'}"
            + (f": {cause}" if cause else f" ({queue.title}: {state.native})"),
            exit_code=state.exit_code or 1,
        )


class _JobsGroup(click.Group):
    """`jobs [BOT]` lists; `jobs cancel ID [BOT]` and `jobs logs ID [BOT]` are subcommands."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args or (args[0] not in self.commands and args[0] not in ("-h", "--help")):
            args = ["list", *args]
        return super().parse_args(ctx, args)


@click.group("jobs", cls=_JobsGroup)
def jobs_cmd() -> None:
    """BOT's queued trainings (rasa-gpu submit): state, node, queue wait, run time, and why one failed.

    \b
    Examples:
      rasa-gpu jobs example_bot
      rasa-gpu jobs cancel 42 example_bot
      rasa-gpu jobs logs 42 example_bot -f
      rasa-gpu jobs model 42 example_bot
    """


@jobs_cmd.command("list")
@bot_argument
@json_option
def jobs_list(bot: str, as_json: bool) -> None:
    """List BOT's jobs, oldest first."""
    import json
    from dataclasses import asdict

    from rich import box
    from rich.table import Table

    from .. import jobs
    from ..project import BotProject
    from ._common import out

    project = BotProject.load(bot)
    shown = jobs.view(project)
    if as_json:
        rows = [{**asdict(v.record), **{k: v for k, v in asdict(v).items() if k != "record"}} for v in shown]
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    table = Table(box=box.SIMPLE, show_edge=False)
    for column in ("job", "state", "node", "gpu", "queued", "ran", "submitted", "why"):
        table.add_column(column)
    for v in shown:
        table.add_row(
            v.record.ref,
            v.state,
            v.node,
            v.gpus,
            _seconds(v.queued_seconds),
            _seconds(v.run_seconds),
            v.record.submitted_at,
            v.reason,
        )
    out.print(table)


@jobs_cmd.command("cancel")
@click.argument("job_id")
@bot_argument
def jobs_cancel(job_id: str, bot: str) -> None:
    """Cancel a job: Slurm ends it, and rasa-gpu on the node removes its container and keeps no partial model."""
    from .. import jobs
    from ..project import BotProject
    from ._common import err

    project = BotProject.load(bot)
    record = jobs.find(project, job_id)
    jobs.queue_of(record).cancel(record.job_id)
    err.print(f"cancelled {record.ref}")


@jobs_cmd.command("model")
@click.argument("job_id")
@bot_argument
def jobs_model(job_id: str, bot: str) -> None:
    """Print the path of the model a job made (in BOT's models/), or say that it has none yet."""
    from .. import jobs
    from ..errors import SettingsError
    from ..project import BotProject

    project = BotProject.load(bot)
    record = jobs.find(project, job_id)
    model = jobs.queue_of(record).fetch(project, record.job_id)
    if model is None:
        raise SettingsError(
            f"{record.ref} has no model in {project.models_dir} (yet); `rasa-gpu jobs {project.root}` shows its state"
        )
    sys.stdout.write(f"{model}\n")


@jobs_cmd.command("logs")
@click.argument("job_id")
@bot_argument
@follow_option
def jobs_logs(job_id: str, bot: str, follow: bool) -> None:
    """Print a job's output (what rasa-gpu train printed on the node)."""
    from .. import jobs
    from ..project import BotProject

    project = BotProject.load(bot)
    record = jobs.find(project, job_id)
    path = jobs.output_path(project, record)

    def done() -> bool:
        if not follow:
            return True
        state = jobs.state_of(record)
        return state is None or state.ended_now

    for line in jobs.follow(path, done):
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def _seconds(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:.0f} s" if value < 120 else f"{value / 60:.1f} min"
