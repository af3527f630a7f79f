"""One example per command, shown at the end of its ``--help`` (kept in one place so a test can
check that every command has one)."""

from __future__ import annotations

import click

EXAMPLES = {
    "curate ingest": "scoreaware curate ingest music/ -m music/autotagging.tsv -o manifests/ingest.jsonl.gz",
    "curate segment": "scoreaware curate segment manifests/ingest.jsonl.gz --window 10 -o manifests/segment.jsonl.gz",
    "curate score clap": "scoreaware curate score clap manifests/segment.jsonl.gz -o manifests/clap.jsonl.gz",
    "curate score reward": "scoreaware curate score reward manifests/clap.jsonl.gz --checkpoint reward.pt "
                           "-o manifests/reward.jsonl.gz",
    "curate caption": "scoreaware curate caption manifests/reward.jsonl.gz --stage audio -o manifests/verbose.jsonl.gz",
    "curate filter": "scoreaware curate filter manifests/rescored.jsonl.gz --clap-percentile 10 "
                     "-o manifests/filter.jsonl.gz",
    "curate select": "scoreaware curate select manifests/filter.jsonl.gz --top 0.1 -o manifests/select.jsonl.gz",
    "curate report": "scoreaware curate report manifests/segment.jsonl.gz manifests/filter.jsonl.gz "
                     "-o manifests/report",
    "curate export": "scoreaware curate export manifests/filter.jsonl.gz -o dataset/",
    "curate publish": "scoreaware curate publish manifests/filter.jsonl.gz --repo-id ORG/NAME --private",
    "curate import": "scoreaware curate import ORG/NAME -o manifests/import.jsonl.gz",
    "curate validate": "scoreaware curate validate manifests/filter.jsonl.gz",
    "curate describe": "scoreaware curate describe manifests/reward.jsonl.gz --plot scores.png",
    "train reward": "scoreaware train reward pairs.jsonl --manifest manifests/reward.jsonl.gz -o reward.pt",
    "train encode": "scoreaware train encode manifests/filter.jsonl.gz -o manifests/encode.jsonl.gz --repa clap",
    "train fit": "scoreaware train fit --preset S --manifest manifests/encode.jsonl.gz --set steps=30000",
    "train sample": "scoreaware train sample runs/000-S/checkpoints/0030000.pt --prompts prompts.txt -o samples/",
    "posttrain expert-iteration": "scoreaware posttrain expert-iteration CKPT --prompts prompts.txt -o ei/ "
                                  "--reward reward.pt --mert-model m-a-p/MERT-v1-330M",
    "posttrain cross-load": "scoreaware posttrain cross-load CKPT --score-head input_add -o crossload.pt",
    "posttrain crpo": "scoreaware posttrain crpo crossload.pt --prompts prompts.txt -o crpo/",
    "eval generate": "scoreaware eval generate CKPT --prompts prompts.csv --seeds 3 -o eval/run",
    "eval reference": "scoreaware eval reference manifests/filter.jsonl.gz -o eval/reference.npz",
    "eval score": "scoreaware eval score eval/run --reference eval/reference.npz",
    "eval fad": "scoreaware eval fad generated.npy eval/reference.npz",
    "eval compare": "scoreaware eval compare eval/baseline eval/score_sft --names baseline,score_sft",
    "experiment run": "scoreaware experiment run experiments/seed_a/seed_a.toml -o experiments/seed_a/results",
    "experiment merge": ("scoreaware experiment merge experiments/seed_a/seed_a.toml experiments/seed_a/part2 "
                         "-o experiments/seed_a/results"),
    "experiment plan": "scoreaware experiment plan experiments/seed_a/seed_a.toml --pilot experiments/seed_a/results",
    "demo prepare-seed-a": "scoreaware demo prepare-seed-a -o experiments/seed_a",
    "demo prepare-seed-b": "scoreaware demo prepare-seed-b -o experiments/seed_b",
    "demo make-corpus": "scoreaware demo make-corpus corpus/ --clips 40 --seed 0",
    "demo train-judge": "scoreaware demo train-judge -o judge/",
    "demo train-world-codec": "scoreaware demo train-world-codec -o world_codec/",
    "demo train-world-clap": "scoreaware demo train-world-clap -o world_clap/",
    "demo train-world-reward": "scoreaware demo train-world-reward -o world_reward/ --clap world_clap/",
    "demo train-world-captioners": "scoreaware demo train-world-captioners -o world_captioners/",
    "demo train-world-generator": "scoreaware demo train-world-generator -o world_generator/ --workdir gen/",
    "demo prompts": "scoreaware demo prompts -o prompts.csv -n 48",
    "demo make-models": "scoreaware demo make-models models/",
    "demo train-models": "scoreaware demo train-models -o models/ --only clap,reward",
    "demo run": "scoreaware demo run --workdir manifests/demo",
}


def commands(group: click.Group, path: tuple[str, ...] = ()):
    """(path, command) of every visible leaf command under `group`."""
    for name, command in group.commands.items():
        if command.hidden:
            continue
        if isinstance(command, click.Group):
            yield from commands(command, (*path, name))
        else:
            yield " ".join((*path, name)), command


def add_examples(root: click.Group) -> None:
    """End every command's help with its example (click keeps the epilog's line breaks with \\b)."""
    for path, command in commands(root):
        example = EXAMPLES.get(path)
        if example:
            command.epilog = f"\b\nExample:\n  {example}"
