""""Export job": a folder with JOB.json, the dataset, an accelerate config and the exact launch command.

The accelerate configs start from the ones TRL ships (``trl/accelerate_configs``: DDP, DeepSpeed
ZeRO-2/3, FSDP2) with the machine and process counts filled in. The entry point is the same
``main.py train --job`` the app runs locally.
"""
from __future__ import annotations

import json
import shlex
import shutil
from pathlib import Path

from engines.core.errors import RequestError
from engines.core.launch import MAIN
from engines.core.resources import is_frozen
from engines.core.paths import atomic_write_text
from engines.core.requests.tune import TrainJob

ENVIRONMENT_NOTE = ("it needs Hearth as a Python project with accelerate (a checkout set up with `make env`, or "
                    "pip-installed): the packaged Hearth app cannot run under accelerate launch")
if is_frozen():
    ENVIRONMENT_NOTE += "; replace HEARTH_CHECKOUT with the checkout's folder"
STRATEGIES = {"ddp": "multi_gpu.yaml", "deepspeed-zero2": "zero2.yaml", "deepspeed-zero3": "zero3.yaml", "fsdp": "fsdp2.yaml"}


def accelerate_config(strategy: str, gpus: int, machines: int) -> dict:
    import yaml

    import trl

    if strategy not in STRATEGIES:
        raise RequestError(f"Unknown strategy {strategy!r}.", hint=f"Use one of {', '.join(STRATEGIES)}.")
    if gpus < 1 or machines < 1:
        raise RequestError("GPUs per machine and machines must be at least 1.")
    template = Path(trl.__file__).parent / "accelerate_configs" / STRATEGIES[strategy]
    config = yaml.safe_load(template.read_text())
    config["num_machines"] = machines
    config["num_processes"] = gpus * machines
    config["machine_rank"] = 0
    if machines > 1:
        config["main_process_ip"] = "MAIN_MACHINE_IP"
        config["main_process_port"] = 29500
        if strategy.startswith("deepspeed"):
            config["deepspeed_config"]["deepspeed_multinode_launcher"] = "standard"
    return config


def export_job(job: TrainJob, target: str | Path, *, strategy: str = "ddp", gpus: int = 8, machines: int = 1) -> dict:
    """Write the folder; returns ``{"folder", "command", "files"}``."""
    import yaml

    job.check_fields()
    target = Path(target)
    if target.exists() and any(target.iterdir()):
        raise RequestError(f"The folder {target} already exists.", path=target, hint="Choose a new, empty folder.")
    target.mkdir(parents=True, exist_ok=True)
    dataset = Path(job.dataset)
    if not dataset.is_file():
        raise RequestError(f"The dataset {dataset} does not exist.", path=dataset)
    shutil.copyfile(dataset, target / "dataset.jsonl")
    exported = TrainJob.from_dict(job.to_dict())
    exported.dataset, exported.output_dir, exported.device = "dataset.jsonl", "output", "auto"  # relative to JOB.json
    exported.save(target / "JOB.json")
    config = accelerate_config(strategy, gpus, machines)
    atomic_write_text(target / "accelerate.yaml", yaml.safe_dump(config, sort_keys=False))
    base = ["accelerate", "launch", "--config_file", "accelerate.yaml"]
    if machines > 1:
        base += ["--machine_rank", "$MACHINE_RANK", "--main_process_ip", "$MAIN_MACHINE_IP"]
    # accelerate launches Python processes: the cluster needs Hearth as a Python project, never the frozen app.
    entry = "HEARTH_CHECKOUT/main.py" if is_frozen() else str(MAIN)
    command = " ".join(shlex.quote(a) if not a.startswith("$") else a for a in
                       base + [entry, "train", "--job", "JOB.json"])
    notes = [
        "# Run from this folder on every machine (Hearth installed, same paths):",
        f"#   {ENVIRONMENT_NOTE}",
        f"#   strategy {strategy}, {machines} machine(s) x {gpus} GPU(s) = {gpus * machines} processes",
    ]
    if machines > 1:
        notes.append("#   set MAIN_MACHINE_IP to the first machine's address and MACHINE_RANK to 0..N-1")
    if job.base_model != "default" and not Path(job.base_model).is_relative_to(target):
        notes.append(f"#   base_model is {job.base_model}: make it reachable at that path on every machine")
    if job.reward_model:
        notes.append(f"#   reward_model is {job.reward_model}: copy it to the same path on every machine")
    notes.append("#   resume after an interruption by adding --resume")
    atomic_write_text(target / "launch.sh", "#!/bin/sh\n" + "\n".join(notes) + "\ncd \"$(dirname \"$0\")\"\n" + command + "\n")
    (target / "launch.sh").chmod(0o755)
    return {"folder": str(target), "command": command, "files": sorted(p.name for p in target.iterdir()),
            "note": f"The launch command: {ENVIRONMENT_NOTE}."}


def run_export(args) -> int:
    job = TrainJob.load(args.job)
    result = export_job(job, args.to, strategy=args.strategy, gpus=args.gpus, machines=args.machines)
    print(json.dumps(result))
    return 0
