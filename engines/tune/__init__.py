"""The Tune room's engine: training jobs (SFT, reward, DPO, KTO, RL) with TRL + PEFT LoRA.

``python main.py train --job JOB.json`` runs ``runner.run_job`` in its own process (the GUI starts
it through ``engines.core.launch.child_command`` and tails ``events.jsonl``; the run folder's layout
belongs to ``engines.store.runs``). The label store the
jobs' datasets come from lives in ``engines.store.labels`` so the GUI process can use it without
importing the ML stack. Importing this package stays light; torch/trl/peft load inside the jobs.
"""
