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
held_out = "held_out.jsonl.gz"         # optional: encoded held-out segments (validation flow loss per t bin)
reward = "reward.pt"                   # optional: eval score's reward head and its MERT
mert_model = "mert"
labels = ["rock", "jazz"]              # optional: prompt ids that name classes; the share of clips
label_clap = "clap"                    #   whose nearest "{label} music" (label_template) is their own
judge = "judge"                        # optional: the independent judge's folder (attribute adherence)
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
seeds = [0, 1]                         # optional: a subset of training_seeds (an arm outside the primary
                                       #   contrasts may run fewer; a post-training arm: within its parent's)
[[arm]]
name = "ei"
after = "beta"                         # a post-training step from that arm's checkpoint, per training seed
posttrain = "expert-iteration"         # expert-iteration | cross-load | crpo
prompts = "post_prompts.txt"           # the candidates' prompts (expert-iteration, crpo)
options = { k = 4, ft_steps = 100 }    # the driver's options that differ from its defaults
```

Pre-registered contrasts (read by `experiment plan` before anything trains, and by the table)::

```toml
unit = "training_seed"                # the replication unit of a recipe claim ("prompt": within one seed)
[[contrast]]
name = "score-aware"
arms = ["beta", "uniform"]             # treatment, control: both arms of this file
metric = "instrument"                  # what is compared (judge adherence, clap_score, reward, fad_clap, label)
margin = 0.05                          # the smallest difference that matters: the planner's target effect,
                                       #   and the equivalence margin of a "no worse" claim
primary = true                         # Holm runs over the primary family only
claim = "difference"                   # or "equivalence" (TOST against the margin)
sd = 0.04                              # optional: a pilot's SD of one unit's delta (else `plan --pilot`)
```

One arm changes one thing: `set`, `filter` and `manifest` are each deltas from the base, and a
post-training arm is one step from the arm it names in `after`, which is what it is compared
with (the others are compared with the first arm). Every error names the file and the key at
fault.
"""

from __future__ import annotations

import json
import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from scoreaware.core.errors import StageError
from scoreaware.train.config import ConfigError, resolve

FILTER_KEYS = {"clap_percentile", "min_clap", "min_duration", "max_duration", "min_lufs", "require_caption"}
# the options a post-training arm may change, per step (the drivers' keyword arguments)
POSTTRAIN_OPTIONS = {
    "expert-iteration": {"rounds", "k", "score", "cfg", "sample_steps", "seconds", "blend", "per_prompt", "top",
                         "oversample", "ft_steps", "lr", "polish_steps", "polish_lr", "batch_size", "reward",
                         "mert_model", "random_selection"},
    "cross-load": {"score_head", "probe_score", "adapt_steps", "max_gap"},
    "crpo": {"n", "score", "cfg", "sample_steps", "seconds", "min_margin", "holdout", "train_steps", "lr", "warmup",
             "beta", "lambda_fm", "batch_size", "score_dropout", "random_pairs"},
}
ARM_KEYS = {"name", "set", "filter", "manifest", "after", "posttrain", "prompts", "options", "combines", "seeds"}
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
EVALUATE_TYPES = {"seeds": (int, 1, True), "steps": (int, 1, True), "cfg": ((int, float), 0, True),
                  "score": ((int, float), -1e6, True), "seconds": ((int, float), 0, False)}
FILTER_TYPES = {"clap_percentile": (float, 0, 100), "min_clap": (float, -1, 1), "min_duration": (float, 0, None),
                "max_duration": (float, 0, None), "min_lufs": (float, -120, 0), "require_caption": (bool, None, None)}
CONTRAST_KEYS = {"name", "arms", "metric", "margin", "primary", "claim", "sd"}
UNITS = ("training_seed", "prompt")


@dataclass(frozen=True)
class Arm:
    name: str
    set: dict = field(default_factory=dict)  # train fit --set deltas from the base
    filter: dict | None = None  # curate filter rules applied to the manifest first (FilterConfig fields)
    manifest: Path | None = None  # another training manifest instead of the experiment's
    after: str | None = None  # a post-training arm: the arm whose checkpoint it starts from
    posttrain: str | None = None  # expert-iteration | cross-load | crpo
    prompts: Path | None = None  # the candidates' prompts of expert-iteration and crpo
    options: dict = field(default_factory=dict)  # the driver's options that differ from its defaults
    combines: tuple[str, ...] = ()  # the changes an arm deliberately combines (the paper's "filter + Beta")
    seeds: tuple[int, ...] | None = None  # the training seeds this arm runs (None: the file's training_seeds)


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
    held_out: Path | None = None  # encoded held-out segments: each checkpoint's validation flow loss per t bin
    judge: Path | None = None  # a judge folder: attribute adherence of clips whose prompts name their attributes


@dataclass(frozen=True)
class Contrast:
    """A comparison declared before the run: treatment − control on one metric."""

    name: str
    treatment: str
    control: str
    metric: str
    margin: float
    primary: bool = True
    claim: str = "difference"  # or "equivalence"
    sd: float | None = None  # a pilot's SD of one unit's delta


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
    contrasts: tuple[Contrast, ...] = ()
    unit: str = "training_seed"

    def seeds_of(self, arm: Arm) -> tuple[int, ...]:
        """The training seeds `arm` runs: its own `seeds`, else the file's (a secondary arm may run fewer)."""
        return arm.seeds if arm.seeds is not None else self.training_seeds

    def against(self, arm: Arm) -> str:
        """The arm `arm` is compared with: its parent for a post-training arm, else the first."""
        return arm.after or self.arms[0].name

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

    unknown = set(data) - {"name", "manifest", "training_seeds", "base", "evaluate", "arm", "contrast", "unit"}
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
        if not isinstance(arm, dict):
            raise StageError(f"{path}: arm[{index}] = {arm!r} must be a table ([[arm]])")
        name = need(arm, "name", str, prefix)
        if name in names or not SAFE_NAME.fullmatch(name):
            raise StageError(f"{path}: {prefix}name {name!r} is empty, repeated or not a safe folder name (letters, "
                             "digits, '.', '_', '-'; at most 64, not starting with '.')")
        names.add(name)
        if set(arm) - ARM_KEYS:
            raise StageError(f"{path}: unknown keys in {prefix[:-1]}: {sorted(set(arm) - ARM_KEYS)}")
        rules = arm.get("filter")
        if rules is not None and (not isinstance(rules, dict) or set(rules) - FILTER_KEYS):
            raise StageError(f"{path}: {prefix}filter must be a table of {sorted(FILTER_KEYS)}")
        for key, value in (rules or {}).items():
            check_filter_value(path, f"{prefix}filter.{key}", key, value)
        for key in ("set", "options"):
            if key in arm and not isinstance(arm[key], dict):
                raise StageError(f"{path}: {prefix}{key} = {arm[key]!r} must be a table ({key} = {{ key = value }})")
        combines = arm.get("combines", [])
        if not isinstance(combines, list) or not all(isinstance(c, str) and c for c in combines):
            raise StageError(f"{path}: {prefix}combines = {combines!r} must be a list of the changes it combines")
        changes = [f"set.{k}" for k in arm.get("set", {})] + [k for k in ("filter", "manifest") if k in arm]
        if index and "after" not in arm and len(changes) != 1 and len(changes) != len(combines):
            listed = ", ".join(changes) or "nothing"
            raise StageError(f"{path}: {prefix[:-1]} changes {len(changes)} things ({listed}); "
                             "an arm changes one thing from the base, or declares what it combines "
                             f"(combines = {json.dumps([c.split('.')[-1] for c in changes] or ['...'])})")
        manifest = local(need(arm, "manifest", str, prefix), f"{prefix}manifest") if "manifest" in arm else None
        after = need(arm, "after", str, prefix) if "after" in arm else None
        step = need(arm, "posttrain", str, prefix) if "posttrain" in arm else None
        if (after is None) != (step is None):
            raise StageError(f"{path}: {prefix[:-1]} needs both `after` and `posttrain` (or neither)")
        prompts, options = None, dict(arm.get("options", {}))
        if after is not None:
            if after not in names - {name}:
                raise StageError(f"{path}: {prefix}after = {after!r} names no earlier arm")
            if step not in POSTTRAIN_OPTIONS:
                raise StageError(f"{path}: {prefix}posttrain = {step!r} is not one of {sorted(POSTTRAIN_OPTIONS)}")
            if {"set", "filter", "manifest"} & set(arm):
                raise StageError(f"{path}: {prefix[:-1]}: a post-training arm changes one thing, its step; "
                                 "`set`, `filter` and `manifest` belong to training arms")
            unknown = set(options) - POSTTRAIN_OPTIONS[step]
            if unknown:
                raise StageError(f"{path}: unknown keys in {prefix}options for {step}: {sorted(unknown)} (known: "
                                 f"{sorted(POSTTRAIN_OPTIONS[step])})")
            if step != "cross-load":
                prompts = local(need(arm, "prompts", str, prefix), f"{prefix}prompts")
            if "reward" in options:
                options["reward"] = str(local(need(options, "reward", str, f"{prefix}options."),
                                              f"{prefix}options.reward"))
        elif "options" in arm or "prompts" in arm:
            raise StageError(f"{path}: {prefix[:-1]}: `options` and `prompts` are for post-training arms")
        arms.append(Arm(name, dict(arm.get("set", {})), rules, manifest, after, step, prompts, options,
                        tuple(combines), arm_seeds(path, prefix, arm.get("seeds"))))
    evaluate = need(data, "evaluate", dict)
    unknown = set(evaluate) - {f for f in Evaluation.__dataclass_fields__}
    if unknown:
        raise StageError(f"{path}: unknown keys in [evaluate]: {sorted(unknown)}")
    for key, (kinds, low, inclusive) in EVALUATE_TYPES.items():
        if key in evaluate:
            value = evaluate[key]
            if value is None and key == "score":
                continue
            if isinstance(value, bool) or not isinstance(value, kinds) or (
                    isinstance(value, float) and not math.isfinite(value)) or (
                    value < low if inclusive else value <= low):
                kind = "an integer" if kinds is int else "a number"
                raise StageError(f"{path}: evaluate.{key} = {value!r} must be {kind} {'≥' if inclusive else '>'} {low}")
    for key in ("mert_model", "label_template"):
        if key in evaluate and not isinstance(evaluate[key], str):
            raise StageError(f"{path}: evaluate.{key} = {evaluate[key]!r} must be text")
    if "labels" in evaluate and not (isinstance(evaluate["labels"], list)
                                     and all(isinstance(x, str) for x in evaluate["labels"])):
        raise StageError(f"{path}: evaluate.labels = {evaluate['labels']!r} must be a list of prompt ids")
    evaluation = Evaluation(
        prompts=local(need(evaluate, "prompts", str, "evaluate."), "evaluate.prompts"),
        reference=local(need(evaluate, "reference", str, "evaluate."), "evaluate.reference"),
        **{k: evaluate[k] for k in ("seeds", "steps", "cfg", "score", "seconds", "mert_model", "label_template")
           if k in evaluate},
        reward=local(evaluate["reward"], "evaluate.reward") if "reward" in evaluate else None,
        held_out=local(evaluate["held_out"], "evaluate.held_out") if "held_out" in evaluate else None,
        judge=local(evaluate["judge"], "evaluate.judge") if "judge" in evaluate else None,
        labels=tuple(evaluate.get("labels", ())),
        label_clap=str(local(evaluate["label_clap"], "evaluate.label_clap")) if "label_clap" in evaluate else None)
    if evaluation.labels and not evaluation.label_clap:
        raise StageError(f"{path}: evaluate.labels needs evaluate.label_clap (the CLAP that hears them)")
    seeds = arm_seeds(path, "", data.get("training_seeds", [0]), key="training_seeds")
    by_name = {arm.name: arm for arm in arms}
    for index, arm in enumerate(arms):
        outside = sorted(set(arm.seeds or ()) - set(seeds))
        if outside:
            raise StageError(f"{path}: arm[{index}].seeds: {outside[0]} is not one of training_seeds {list(seeds)}")
        if arm.after is not None:
            parent = by_name[arm.after].seeds or seeds
            missing = sorted(set(arm.seeds or seeds) - set(parent))
            if missing:
                raise StageError(f"{path}: arm[{index}] ({arm.name}) would run training seed {missing[0]}, which its "
                                 f"parent {arm.after!r} does not run: give it seeds = {sorted(parent)} or fewer")
    if not isinstance(base.get("set", {}), dict):
        raise StageError(f"{path}: base.set = {base['set']!r} must be a table")
    check_training(path, base.get("preset"), dict(base.get("set", {})), arms)
    unit = data.get("unit", "training_seed")
    if unit not in UNITS:
        raise StageError(f"{path}: unit = {unit!r} is not one of {list(UNITS)}")
    contrasts = parse_contrasts(path, data.get("contrast", []), names)
    return Experiment(path, str(data.get("name", path.stem)), local(need(data, "manifest", str), "manifest"),
                      tuple(arms), seeds, base.get("preset"), dict(base.get("set", {})), evaluation,
                      contrasts, unit)


def arm_seeds(path: Path, prefix: str, value, key: str = "seeds") -> tuple[int, ...] | None:
    """Distinct training seeds ≥ 0 (None when the key is absent), else StageError naming the key."""
    if value is None:
        return None
    if not isinstance(value, list) or not value or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0
                                                           for s in value) or len(set(value)) != len(value):
        raise StageError(f"{path}: {prefix}{key} = {value!r} must be distinct integers ≥ 0")
    return tuple(value)


def parse_contrasts(path: Path, items: object, arms: set[str]) -> tuple[Contrast, ...]:
    """The [[contrast]] tables, each checked; StageError naming the key at fault."""
    if not isinstance(items, list):
        raise StageError(f"{path}: contrast must be an array of tables ([[contrast]])")
    found, names = [], set()
    for index, item in enumerate(items):
        at = f"{path}: contrast[{index}]"
        if not isinstance(item, dict):
            raise StageError(f"{at} is not a table")
        if set(item) - CONTRAST_KEYS:
            raise StageError(f"{at}: unknown keys {sorted(set(item) - CONTRAST_KEYS)} (known: {sorted(CONTRAST_KEYS)})")
        name = item.get("name")
        if not isinstance(name, str) or not name or name in names:
            raise StageError(f"{at}.name = {name!r} is missing, empty or repeated")
        names.add(name)
        pair = item.get("arms")
        if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(a, str) for a in pair)
                and pair[0] != pair[1]):
            raise StageError(f"{at}.arms = {pair!r} must be two different arm names [treatment, control]")
        missing = [a for a in pair if a not in arms]
        if missing:
            raise StageError(f"{at}.arms: {missing[0]!r} is no arm of this file")
        metric = item.get("metric")
        if not isinstance(metric, str) or not metric:
            raise StageError(f"{at}.metric = {metric!r} must name a metric")
        margin = item.get("margin")
        if isinstance(margin, bool) or not isinstance(margin, (int, float)) or not margin > 0:
            raise StageError(f"{at}.margin = {margin!r} must be a number > 0")
        primary = item.get("primary", True)
        if not isinstance(primary, bool):
            raise StageError(f"{at}.primary = {primary!r} must be true or false")
        claim = item.get("claim", "difference")
        if claim not in ("difference", "equivalence"):
            raise StageError(f"{at}.claim = {claim!r} must be 'difference' or 'equivalence'")
        sd = item.get("sd")
        if sd is not None and (isinstance(sd, bool) or not isinstance(sd, (int, float)) or not sd > 0):
            raise StageError(f"{at}.sd = {sd!r} must be a number > 0")
        found.append(Contrast(name, pair[0], pair[1], metric, float(margin), primary, claim,
                              None if sd is None else float(sd)))
    return tuple(found)


def check_filter_value(path: Path, where: str, key: str, value) -> None:
    """A filter rule's value of the right type and range, else StageError naming it."""
    kind, low, high = FILTER_TYPES[key]
    if kind is bool:
        if not isinstance(value, bool):
            raise StageError(f"{path}: {where} = {value!r} must be true or false")
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise StageError(f"{path}: {where} = {value!r} must be a number")
    if (low is not None and value < low) or (high is not None and value > high):
        raise StageError(f"{path}: {where} = {value!r} must be within [{low}, {'∞' if high is None else high}]")


def check_training(path: Path, preset: str | None, base: dict, arms: list[Arm]) -> None:
    """Every training arm's `train fit` settings resolve (known keys, types, ranges) before anything trains."""
    try:
        resolve(preset, overrides={**base, "manifest": "-"})
    except ConfigError as error:
        raise StageError(f"{path}: base.set: {error}") from None
    for index, arm in enumerate(arms):
        if arm.after is None:
            try:
                resolve(preset, overrides={**base, **arm.set, "manifest": "-"})
            except ConfigError as error:
                raise StageError(f"{path}: arm[{index}].set ({arm.name}): {error}") from None
