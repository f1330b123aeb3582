"""The run configuration's settings (pydantic): what each part of a run may be told.

Everything is checked up front so a bad value fails before any data is loaded or any
directory is created (`fedlab.config.load` reads TOML and CLI overrides into it).
`SimulationConfig.to_flat()` / `from_flat()` map the nested model to the flat ``key=value``
run config Flower hands to the ServerApp and every ClientApp (`fedlab.wire.keys.RUN_CONFIG`).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator, model_validator

FEDERATIONS = ("digits", "digit-five", "office-caltech10", "features", "tabular")
# federation options that only one federation reads; a saved config keeps only its own
OWN_OPTIONS = {
    "office-caltech10": ("features",),
    "features": ("pattern", "files", "transform"),
    "tabular": (
        "csv",
        "domain_column",
        "label_column",
        "positive_label",
        "protected",
        "drop_columns",
        "schema_file",
        "preprocess_dp",
    ),
}


# Upper bounds of sizes and rates (documented in README "Configuration"): past them a run would
# never finish (10**21 local steps) or overflow (a learning rate of 1e300 makes every weight inf).
MAX_ROUNDS = 10_000
MAX_STEPS = 100_000  # local / fine-tuning steps per round (and max_epochs_per_round)
MAX_BATCH = 65_536
MAX_ROWS = 1_000_000_000  # subsampling caps and the target sample
MAX_CLIENTS = 100_000
MAX_SEED = 2**32 - 1  # NumPy's seed range
MAX_RATE = 1e6  # learning rates, weight decay, proximal and MMD weights


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, populate_by_name=True)


class PreprocessDPConfig(_Strict):
    """ε-DP Laplace noise on the aggregates clients send for the shared preprocessing
    (`fedlab.data.client_stats`); ``epsilon`` unset = exact aggregates (no noise)."""

    epsilon: float | None = Field(None, gt=0)
    # public bound on a numeric value's magnitude after clipping (values are clipped to ±bound)
    clip: float = Field(1e6, gt=0)


class FederationConfig(_Strict):
    """Which domains exist, where their files are, and how they become clients."""

    name: str = "digits"
    data_dir: str = ""  # folder with the federation's files (file-based federations)
    domains: list[str] = Field(default_factory=list)  # subset to use; empty = all found
    clients_per_domain: int = Field(1, ge=1, le=1000)
    split: Literal["iid", "dirichlet"] = "iid"
    dirichlet_alpha: float = Field(0.5, gt=0, le=1e6)
    test_fraction: float = Field(0.2, gt=0, lt=1)
    max_per_domain: int = Field(0, ge=0, le=MAX_ROWS)  # 0 = keep all samples of a domain
    # official test splits (digit-five files, features <domain>_test files, digits): cap, 0 = all
    max_test_per_domain: int = Field(0, ge=0, le=MAX_ROWS)
    # seeds the subsample and train/test split: fixed across run seeds, so every run is scored
    # on the same target test rows
    split_seed: int = Field(0, ge=0, le=MAX_SEED)
    # office-caltech10
    features: Literal["surf", "decaf"] = "surf"
    # features: glob of per-domain files inside data_dir (one file = one domain; <d>_train.* +
    # <d>_test.* = one domain with its official test file), or an explicit mapping
    # {domain = {train = "file", test = "file"}} (paths relative to data_dir; test optional)
    pattern: str = "*"
    files: dict[str, dict[str, str]] = Field(default_factory=dict)
    # features: input transform fitted on the source clients' training rows only
    transform: Literal["none", "log1p", "tfidf", "zscore"] = "none"
    # tabular
    csv: str = ""
    domain_column: str = ""
    label_column: str = ""
    # a number or a string (compared as text: 1 == "1" == 1.0), as in the audit schema
    positive_label: str | int | float | bool = ""
    # the audit schema's syntax (audits.datasets.protected): { race = "Caucasian" },
    # { race = ["Caucasian", "Asian"] }, ["sex:Male", "race:Caucasian|Asian"]; a bare "sex" only for
    # a two-valued column (a multi-valued one without a privileged value is an error)
    protected: list[str] | dict[str, str | int | float | bool | list[str | int | float | bool]] = Field(
        default_factory=list
    )
    drop_columns: list[str] = Field(default_factory=list)
    # the audit's schema TOML (audits.datasets.schema): local anonymization takes its
    # quasi-identifiers, sensitive attribute and hierarchies from it (relative to the config file)
    schema_file: str = Field("", validation_alias=AliasChoices("schema", "schema_file"))
    # Laplace noise on the per-client preprocessing aggregates (fedlab.data.client_stats)
    preprocess_dp: PreprocessDPConfig = Field(default_factory=lambda: PreprocessDPConfig())

    @field_validator("files")
    @classmethod
    def _pairs(cls, v: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
        for domain, split in v.items():
            bad = set(split) - {"train", "test"}
            if "train" not in split or bad:
                raise ValueError(
                    f"files.{domain}: expected keys train (and optionally test), got {sorted(split)}"
                )
        return v

    @field_validator("name")
    @classmethod
    def _known(cls, v: str) -> str:
        if v not in FEDERATIONS:
            raise ValueError(f"unknown federation {v!r}; expected one of {', '.join(FEDERATIONS)}")
        return v


class TrainingConfig(_Strict):
    """Strategy and optimisation settings shared by server and clients."""

    # a name `server.strategies.resolve_strategy` knows: fedlab's, Flower's built-ins (fedadam,
    # qfedavg, ...), package.module:Class, or BASE+fedka; or "fedka-select" (`fedlab.runs.select`:
    # FedKA or FedAvg per target, chosen on the sources' own pseudo-targets), the default since
    # issue #26 because plain FedKA loses to FedAvg on label-shifted data (simulations only)
    strategy: str = "fedka-select"
    # constructor keywords of the strategy (e.g. FedAdam's eta, Krum's num_malicious_nodes)
    strategy_options: dict[str, float | int | bool | str] = Field(default_factory=dict)
    target: str = ""  # domain held out as the unlabeled target; "" = federation default
    rounds: int = Field(10, ge=1, le=MAX_ROUNDS)
    local_steps: int = Field(20, ge=1, le=MAX_STEPS)
    batch_size: int = Field(64, ge=1, le=MAX_BATCH)
    lr: float = Field(0.01, gt=0, le=MAX_RATE)
    momentum: float = Field(0.9, ge=0, lt=1)
    weight_decay: float = Field(5e-4, ge=0, le=MAX_RATE)
    proximal_mu: float = Field(0.01, ge=0, le=MAX_RATE)
    mmd_weight: float = Field(1.0, ge=0, le=MAX_RATE)
    target_sample: int = Field(256, ge=2, le=MAX_ROWS)  # target embeddings sent to clients each round
    # "pseudo": class-weighted matching. The server sends the global model's predicted class of each
    # target embedding (AdaBN, no label read) and each client weights them in its MMD by
    # p_client(ŷ)/q̂(ŷ), so it aligns to a target sample with its own class mix: aligning the marginals
    # of domains whose label rates differ costs target accuracy (COMPAS by age, issue #26). "off" (the
    # reference) aligns to the sample as drawn. See docs/reproductions/fedka2022.md, variant 20.
    mmd_reweight: Literal["off", "pseudo"] = "off"
    finetune_steps: int = Field(20, ge=0, le=MAX_STEPS)  # server fine-tuning steps on voted pseudo-labels
    vote_agreement: float = Field(0.5, gt=0, le=1)  # share of voters that must agree (1 = unanimous)
    # which voted samples FedKA may adopt: "majority" (winner has > half the votes; fedlab) or
    # "plurality" (every sample, as the reference notebook does)
    vote_rule: Literal["majority", "plurality"] = "majority"
    # FedKA voting starts after this share of the rounds: pseudo-labels from barely trained
    # clients are mostly wrong, and fine-tuning on them locks the errors in (confirmation bias).
    vote_warmup: float = Field(0.5, ge=0, lt=1)
    # server fine-tuning learning rate (default: lr)
    finetune_lr: float | None = Field(None, gt=0, le=MAX_RATE)
    # FedKA adopts, per voted class, only this share of the majority-voted samples: the most
    # confident ones (class-balanced self-training). 1 = the reference rule (every majority vote).
    vote_select: float = Field(0.5, gt=0, le=1)
    # voters predict with BatchNorm statistics of the target pool (AdaBN) instead of their own
    vote_target_batchnorm: bool = True
    # FedKA's fine-tuning on the votes: every layer ("all", the reference) or the classifier only
    # ("head": the extractor keeps its source-trained, MMD-aligned features)
    finetune_scope: Literal["all", "head"] = "all"
    # μ of a pull μ/2·‖w − w_avg‖² towards the averaged model while fine-tuning on the votes: the
    # fine-tuning can then not forget the source task or undo the alignment (the harm seen even with
    # correct votes). 1.0 since issue #26 (picked on the Office-Caltech10 ablation, confirmed on
    # Digit-Five; docs/reproductions/fedka2022.md); 0 = the step as before (fedka-ref always uses 0).
    finetune_prox: float = Field(1.0, ge=0, le=MAX_RATE)
    # BatchNorm statistics while fine-tuning on the votes: "adapt" (the reference: train mode moves them
    # to the adopted target rows') or "keep" (eval mode: the averaged model's statistics stay). Under
    # label shift the target's statistics absorb the change in class mix (issue #26, variant 22).
    finetune_batchnorm: Literal["adapt", "keep"] = "adapt"
    # label-free vote-reliability guard: "holdout" fine-tunes on part of the adopted votes and keeps
    # the fine-tuned model only if it agrees with the held-out votes more often than the averaged
    # model does (see `server.steps.voting`); "off" always keeps it (the reference)
    vote_guard: Literal["off", "holdout"] = "off"
    # > 0: a round fine-tunes on the votes only when at least this many are adopted per class on
    # average, else it keeps the averaged model (f-DAN's step). A small pool re-adopts the same few
    # votes every round. Default 0 (always, the reference): 16 helped on Office-Caltech10 but lost
    # 4.8 pp on small-pool Digit-Five, its pre-registered confirmation (docs/reproductions/fedka2022.md).
    vote_min_per_class: int = Field(0, ge=0, le=MAX_BATCH)
    # > 0: a round fine-tunes on the votes only when at least this share of the target pool reaches
    # the vote rule's threshold (voter consensus), else it keeps the averaged model. Voters that split
    # on most of the pool are not a consensus to teach from (held-out digits "inverted", issue #26:
    # votes 15-34 % right, strict majority on 38-45 % of the pool). Default 0 (always); see
    # docs/reproductions/fedka2022.md for its pre-registered test.
    vote_min_consensus: float = Field(0.0, ge=0, le=1)
    # Which model FedKA's clients start the next round from: "finetuned" (fedlab until issue #26: the
    # global model after fine-tuning on the votes) or "averaged" (the reference notebook: its clients
    # load the averaged state dict, the fine-tuned model is only scored, saved and embeds the target),
    # so that votes never come from models trained on earlier votes.
    vote_clients_start: Literal["finetuned", "averaged"] = "finetuned"
    # FedKA's fine-tuning optimizer state: fresh every "round" (fedlab until issue #26) or kept for the
    # whole "run" (the reference notebook's one global Adam): a fresh Adam moves every weight by about
    # the learning rate on its first steps however small the gradient on already-fitted votes is.
    finetune_optimizer_state: Literal["round", "run"] = "round"
    min_fit_clients_fraction: float = Field(1.0, gt=0, le=1)
    optimizer: Literal["sgd", "adam"] = "sgd"  # clients and server fine-tuning (adam: no momentum)
    # > 0: a client's local steps and FedKA's fine-tuning steps stop after this many passes over
    # their data (the reference's "up to 32 / 128 batches" on small domains); 0 = no cap
    max_epochs_per_round: float = Field(0.0, ge=0, le=MAX_STEPS)
    # Cross-device scale (see `server.sampling`): clients trained per round, drawn with a seeded RNG
    # (0 = every client every round); evaluation every `eval_every` rounds (and the last); which
    # clients score the global model on their own split in those rounds.
    clients_per_round: int = Field(0, ge=0, le=MAX_CLIENTS)
    eval_every: int = Field(1, ge=1, le=MAX_ROUNDS)
    client_eval: Literal["none", "sampled", "all"] = "sampled"

    @field_validator("strategy")
    @classmethod
    def _named(cls, v: str) -> str:
        # which names exist is the strategy registry's to say (`server.strategies`), checked
        # before any run; here only that there is one
        if not v.strip():
            raise ValueError("strategy is empty; expected a name such as fedavg or fedka")
        return v.strip()


class DPConfig(_Strict):
    """Differential privacy (see `fedlab.learn.privacy`): client DP-SGD (Opacus) or central DP (Flower).

    Exactly one of ``target_epsilon`` (noise calibrated over the planned rounds × local steps)
    and ``noise_multiplier`` must be set when enabled. ``delta`` unset = 1/n: the client's training
    set size (client mode) or the number of clients (central mode, user-level DP).
    ``epsilon_budget`` caps what a client may spend (noise-multiplier mode; with a target ε the
    budget is the target): a client whose next round would exceed it stops training.
    """

    enabled: bool = False
    mode: Literal["client", "central"] = "client"
    target_epsilon: float | None = Field(None, gt=0)
    noise_multiplier: float | None = Field(None, gt=0)
    delta: float | None = Field(None, gt=0, lt=1)  # None = 1/n
    max_grad_norm: float = Field(1.0, gt=0)
    poisson: bool = True
    epsilon_budget: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _one_noise_source(self) -> DPConfig:
        if not self.enabled:
            return self
        if (self.target_epsilon is None) == (self.noise_multiplier is None):
            raise ValueError("set exactly one of target_epsilon and noise_multiplier")
        if self.mode == "central" and self.target_epsilon is not None:
            raise ValueError("central DP takes a noise_multiplier (its epsilon is reported, not targeted)")
        if self.mode == "client" and not self.poisson:
            raise ValueError("client DP-SGD accounting assumes Poisson sampling; keep poisson = true")
        if self.epsilon_budget is not None and self.target_epsilon is not None:
            raise ValueError(
                "epsilon_budget goes with noise_multiplier; with target_epsilon the target is the budget"
            )
        return self


class AnonymizeConfig(_Strict):
    """Local anonymization of each tabular client's partition (see `fedlab.federation.anonymize`).

    ``spec`` is e.g. ``"k=10"``, ``"k=10,l=2"`` or ``"k=5,t=0.5"`` ("" = off); l and t protect
    the label column. ``qis`` empty = the audits Adult quasi-identifiers present as features.
    """

    spec: str = ""
    algorithm: Literal["optimal", "greedy", "mondrian"] = "optimal"
    suppression_limit: float = Field(0.05, ge=0, le=1)
    qis: list[str] = Field(default_factory=list)

    @field_validator("spec")
    @classmethod
    def _parse(cls, v: str) -> str:
        parse_anonymize_spec(v)
        return v.strip()


def parse_anonymize_spec(spec: str) -> dict[str, float]:
    """``"k=10,l=2"`` -> ``{"k": 10, "l": 2}``; ValueError naming the bad part otherwise."""
    out: dict[str, float] = {}
    for part in (p.strip() for p in spec.replace(";", ",").split(",")):
        if not part:
            continue
        key, sep, value = part.partition("=")
        key = key.strip().lower()
        if not sep or key not in ("k", "l", "t"):
            raise ValueError(f"anonymize spec part {part!r}: expected k=INT, l=INT or t=FLOAT")
        try:
            number = float(value)
        except ValueError:
            raise ValueError(f"anonymize spec part {part!r}: {value.strip()!r} is not a number") from None
        if key in ("k", "l") and (number != int(number) or number < 1):
            raise ValueError(f"anonymize spec part {part!r}: {key} must be an integer >= 1")
        if key == "t" and not 0 < number <= 1:
            raise ValueError(f"anonymize spec part {part!r}: t must be in (0, 1]")
        out[key] = int(number) if key in ("k", "l") else number
    return out


class SimulationConfig(_Strict):
    # a named preset (fedlab.config.presets), filled in under explicit TOML / CLI values
    """The whole run: seed, device, engine, and the federation / training / DP / anonymization sections each
    layer reads."""

    protocol: Literal["", "fedka2022"] = ""
    seed: int = Field(0, ge=0, le=MAX_SEED)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    # Simulation engine: "inprocess" (default on CPU: no Ray cluster, deterministic)
    # or "ray" (parallel clients in actors, fractional GPUs). "auto": ray when gpus_per_client > 0
    # or ray_address is set.
    # "process": W worker processes (`workers`); "flower": Flower's own simulation runtime (link
    # state + VCE loop) with the in-process backend; "ray": Flower's Ray backend, joining the
    # cluster at `ray_address` when set (see `fedlab.runtime.direct`).
    engine: Literal["auto", "inprocess", "process", "flower", "ray"] = "auto"
    workers: int = Field(2, ge=1, le=256)
    # torch intra-op threads in the simulation process (0 = auto: 1 for vector/MLP federations,
    # whose tiny matrices run slower with several threads, torch's default for image models)
    torch_threads: int = Field(0, ge=0, le=1024)
    ray_address: str = ""
    gpus_per_client: float = Field(0.0, ge=0, le=1)
    cpus_per_client: float = Field(1.0, gt=0, le=1024)
    out: str = "runs"
    federation: FederationConfig = Field(default_factory=FederationConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    dp: DPConfig = Field(default_factory=DPConfig)
    anonymize: AnonymizeConfig = Field(default_factory=AnonymizeConfig)

    def saved_dict(self) -> dict[str, Any]:
        """The config as written to a run's config.toml: without options of other federations
        (nor the tabular-only anonymization when unused) and without unset values (TOML has no null)."""
        data = self.model_dump(exclude_none=True)
        for name, keys in OWN_OPTIONS.items():
            if name != self.federation.name:
                for key in keys:
                    data["federation"].pop(key, None)
        if self.federation.name != "tabular" and not self.anonymize.spec:
            data.pop("anonymize", None)
        return data

    # -- flat run-config round trip (Flower passes only scalars) ---------------------
    def to_flat(self) -> dict[str, Any]:
        """The run config as Flower carries it: the whole config as JSON under `keys.RUN_CONFIG` (set once per
        run)."""
        import json

        return {"fedlab-config": json.dumps(self.model_dump(), sort_keys=True)}

    @classmethod
    def from_flat(cls, flat: dict[str, Any]) -> SimulationConfig:
        """The config back from a run config: the JSON of a simulation, or the flat [tool.flwr.app.config]
        keys of a deployment."""
        import json

        if flat.get("fedlab-config"):  # "" (the app's default): the flat keys below
            return cls.model_validate(json.loads(str(flat["fedlab-config"])))
        # `flwr run .` path: keys from [tool.flwr.app.config]
        data: dict[str, Any] = {"federation": {}, "training": {}}
        mapping = {
            "federation": ("federation", "name"),
            "data-dir": ("federation", "data_dir"),
            "strategy": ("training", "strategy"),
            "target": ("training", "target"),
            "num-server-rounds": ("training", "rounds"),
            "local-steps": ("training", "local_steps"),
            "clients-per-round": ("training", "clients_per_round"),
            "eval-every": ("training", "eval_every"),
            "client-eval": ("training", "client_eval"),
            "seed": (None, "seed"),
            "out": (None, "out"),
            "device": (None, "device"),
        }
        for key, value in flat.items():
            if key in mapping:
                section, field = mapping[key]
                (data if section is None else data[section])[field] = value
        return cls.model_validate(data)
