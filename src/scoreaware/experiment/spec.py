"""An experiment file: arms that are deltas from one base, training seeds, evaluation settings.

```toml
name = "seed-a"
manifest = "encode.jsonl.gz"          # an encoded training manifest (relative to this file)
training_seeds = [0, 1, 2]
[base]                                 # `train fit --set` values every arm starts from
preset = "tiny"
set = { steps = 700, batch_size = 16, timesteps = "logit_normal" }
[evaluate]
prompts = "prompts.csv"                # eval generate's prompts
reference = "reference.npz"            # eval score's reference
seeds = 6                              # clips per prompt
steps = 25
cfg = 2.0
score = 2.0                            # the deployment score (ignored by models without a score head)
seconds = 10.0
reward = "reward.pt"                   # optional: eval score's reward head and its MERT
mert_model = "mert"
labels = ["rock", "jazz"]              # optional: prompt ids that name classes; the share of clips
label_clap = "clap"                    #   whose nearest "{label} music" (label_template) is their own
[[arm]]
name = "baseline"                      # the first arm is what every other arm is compared with
[[arm]]
name = "filter"
filter = { clap_percentile = 10 }      # a curation variant: drop the bottom CLAP decile first
[[arm]]
name = "beta"
set = { timesteps = "beta" }
[[arm]]
name = "oracle"
manifest = "oracle.jsonl.gz"           # another training set (encoded the same way): e.g. matched only
```

One arm changes one thing: `set`, `filter` and `manifest` are each deltas from the base. Every
error names the file and the key at fault.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from scoreaware.core.errors import StageError

FILTER_KEYS = {"clap_percentile", "min_clap", "min_duration", "max_duration", "min_lufs", "require_caption"}


@dataclass(frozen=True)
class Arm:
    name: str
    set: dict = field(default_factory=dict)  # train fit --set deltas from the base
    filter: dict | None = None  # curate filter rules applied to the manifest first (FilterConfig fields)
    manifest: Path | None = None  # another training manifest instead of the experiment's


@dataclass(frozen=True)
class Evaluation:
    prompts: Path
    reference: Path
    seeds: int = 6
    steps: int = 25
    cfg: float = 2.0
    score: float | None = 2.0
    seconds: float = 10.0
    reward: Path | None = None
    mert_model: str | None = None
    labels: tuple[str, ...] = ()  # prompt ids that are classes: zero-shot label accuracy per clip
    label_clap: str | None = None  # the CLAP that hears them
    label_template: str = "{label} music"


@dataclass(frozen=True)
class Experiment:
    path: Path
    name: str
    manifest: Path
    arms: tuple[Arm, ...]
    training_seeds: tuple[int, ...]
    preset: str | None
    base: dict
    evaluation: Evaluation

    def overrides(self, arm: Arm, seed: int, manifest: Path, run_dir: Path) -> tuple[str, ...]:
        """The `train fit --set` strings of one arm × training seed."""
        values = {**self.base, **arm.set, "manifest": str(manifest), "seed": seed, "run_dir": str(run_dir)}
        return tuple(f"{key}={_value(value)}" for key, value in values.items())


def _value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value)


def load_experiment(path: str | Path) -> Experiment:
    """Parse and check an experiment file; StageError naming the file and key at fault. Paths in it
    resolve against its folder, to absolute paths (a run may start from any working directory)."""
    path = Path(path).resolve()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise StageError(f"{path}: cannot be read ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise StageError(f"{path}: not valid TOML ({exc})") from None
    where = path.parent

    def need(table: dict, key: str, kind, prefix: str = ""):
        if key not in table:
            raise StageError(f"{path}: missing {prefix}{key}")
        value = table[key]
        if not isinstance(value, kind):
            raise StageError(f"{path}: {prefix}{key} = {value!r} is not a {getattr(kind, '__name__', kind)}")
        return value

    def local(value: str, key: str) -> Path:
        resolved = (where / value) if not Path(value).is_absolute() else Path(value)
        if not resolved.exists():
            raise StageError(f"{path}: {key} = {value!r}: {resolved} does not exist")
        return resolved

    unknown = set(data) - {"name", "manifest", "training_seeds", "base", "evaluate", "arm"}
    if unknown:
        raise StageError(f"{path}: unknown keys {sorted(unknown)}")
    base = data.get("base", {})
    if set(base) - {"preset", "set"}:
        raise StageError(f"{path}: unknown keys in [base]: {sorted(set(base) - {'preset', 'set'})}")
    arms_data = need(data, "arm", list)
    if not arms_data:
        raise StageError(f"{path}: no [[arm]]")
    arms, names = [], set()
    for index, arm in enumerate(arms_data):
        prefix = f"arm[{index}]."
        name = need(arm, "name", str, prefix)
        if name in names or not name or "/" in name or name.startswith("."):
            raise StageError(f"{path}: {prefix}name {name!r} is empty, repeated or not a folder name")
        names.add(name)
        if set(arm) - {"name", "set", "filter", "manifest"}:
            raise StageError(f"{path}: unknown keys in {prefix[:-1]}: "
                             f"{sorted(set(arm) - {'name', 'set', 'filter', 'manifest'})}")
        rules = arm.get("filter")
        if rules is not None and (not isinstance(rules, dict) or set(rules) - FILTER_KEYS):
            raise StageError(f"{path}: {prefix}filter must be a table of {sorted(FILTER_KEYS)}")
        manifest = local(need(arm, "manifest", str, prefix), f"{prefix}manifest") if "manifest" in arm else None
        arms.append(Arm(name, dict(arm.get("set", {})), rules, manifest))
    evaluate = need(data, "evaluate", dict)
    unknown = set(evaluate) - {f for f in Evaluation.__dataclass_fields__}
    if unknown:
        raise StageError(f"{path}: unknown keys in [evaluate]: {sorted(unknown)}")
    evaluation = Evaluation(
        prompts=local(need(evaluate, "prompts", str, "evaluate."), "evaluate.prompts"),
        reference=local(need(evaluate, "reference", str, "evaluate."), "evaluate.reference"),
        **{k: evaluate[k] for k in ("seeds", "steps", "cfg", "score", "seconds", "mert_model", "label_template")
           if k in evaluate},
        reward=local(evaluate["reward"], "evaluate.reward") if "reward" in evaluate else None,
        labels=tuple(evaluate.get("labels", ())),
        label_clap=str(local(evaluate["label_clap"], "evaluate.label_clap")) if "label_clap" in evaluate else None)
    if evaluation.labels and not evaluation.label_clap:
        raise StageError(f"{path}: evaluate.labels needs evaluate.label_clap (the CLAP that hears them)")
    seeds = data.get("training_seeds", [0])
    if not seeds or not all(isinstance(s, int) for s in seeds) or len(set(seeds)) != len(seeds):
        raise StageError(f"{path}: training_seeds = {seeds!r} must be distinct integers")
    return Experiment(path, str(data.get("name", path.stem)), local(need(data, "manifest", str), "manifest"),
                      tuple(arms), tuple(seeds), base.get("preset"), dict(base.get("set", {})), evaluation)
