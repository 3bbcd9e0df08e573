"""The shared training loop: the same data order, caching, optimiser, checkpoints and protocol for
every base model; model specifics come from a ``ModelAdapter`` (see ``adapter.py``).

It runs as one process or data-parallel under ``torchrun`` / ``accelerate launch``: every rank
trains on its slice of each global batch, DDP averages the gradients, and rank 0 alone writes
checkpoints, samples, the log and the final LoRA while the others wait at a barrier.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections import deque
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import torch

from ..core.data.atomic import remove_stale_temps
from ..core.models.registry import resolve
from .adapter import ModelAdapter
from .batches import BatchPlan, step_seed
from .buckets import make_buckets, nearest_bucket, square_size
from .checkpoint import CHECKPOINTS_DIR, Checkpoint, list_checkpoints, newest_valid, prune, remove_stale_staging, verify
from .config import CONFIG_FILE, ConfigError, TrainConfig, save_config
from .datasets import TrainingData, read_training_data
from .disk_cache import DiskCache
from .encoding import EncodedData
from .failures import NonFiniteLoss
from .lora_io import export_state, lora_metadata, resolve_targets, save_lora
from .optim import build_optimizer, build_scheduler, check_available, learning_rate_warning
from .protocol import LOG_FILE, Reporter
from .sampling import write_samples
from .state import restore, save, trainable_parameters
from .stop import StopFlag


def make_adapter(config: TrainConfig, device: torch.device, dtype: torch.dtype) -> ModelAdapter:
    """The adapter the config's family names in the registry, imported only now (it pulls in diffusers)."""
    adapter_class = resolve(config.model_family.trainer_adapter)
    return adapter_class(config, device, dtype)


def make_accelerator(config: TrainConfig) -> Any:
    """One accelerate state per process; in-process reruns (tests, the CLI) start from a clean one.

    Some families have LoRA layers that get no gradient (Qwen-Image's last block computes a
    text-stream output nothing reads); their registry entry tells DDP to expect unused parameters.
    """
    from accelerate import Accelerator, DistributedDataParallelKwargs
    from accelerate.state import AcceleratorState

    if int(os.environ.get("WORLD_SIZE", "1")) == 1:
        AcceleratorState._reset_state(reset_partial_state=True)
    cuda = torch.cuda.is_available()
    if config.mixed_precision == "fp16" and not cuda:
        raise ConfigError("mixed_precision: fp16 needs a GPU; use bf16 or no on the CPU")
    ddp = DistributedDataParallelKwargs(find_unused_parameters=config.model_family.ddp_find_unused_parameters)
    return Accelerator(mixed_precision=config.mixed_precision, cpu=not cuda, kwargs_handlers=[ddp])


def ignore_frozen_weights_in_ddp(model: torch.nn.Module) -> None:
    """DDP copies every weight from rank 0 when it starts; the frozen base is read from the same
    files on every rank, and under block swap or fp8 storage part of it sits in CPU memory or in
    float8, which NCCL and Gloo cannot broadcast. Only the LoRA weights need the copy."""
    frozen = [name for name, param in model.named_parameters() if not param.requires_grad]
    frozen += [name for name, _ in model.named_buffers()]
    torch.nn.parallel.DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(model, frozen)


@dataclass
class RunState:
    step: int = 0
    last_checkpoint: Checkpoint | None = None
    last_loss: float | None = None
    step_times: deque = field(default_factory=lambda: deque(maxlen=20))


class Trainer:
    def __init__(self, config: TrainConfig, reporter: Reporter | None = None) -> None:
        self.config = config
        self.accelerator = make_accelerator(config)
        self.rank = self.accelerator.process_index
        self.world = self.accelerator.num_processes
        self.reporter = reporter or Reporter()
        self.reporter.rank = self.rank
        self.out = config.output_dir
        self.ckpt_root = self.out / CHECKPOINTS_DIR
        self.stop = StopFlag(self.out)
        self.run_state = RunState()
        self.data: TrainingData | None = None
        self.block_swap: Any = None

    # Setup --------------------------------------------------------------------------------
    def _weight_dtype(self) -> torch.dtype:
        return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.config.mixed_precision, torch.float32)

    def _sizes(self, adapter: ModelAdapter) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        cfg, multiple = self.config, adapter.pixel_multiple
        if cfg.bucket_step % multiple:
            raise ConfigError(
                f"bucket_step must be a multiple of {multiple} for this model (got {cfg.bucket_step})"
            )
        if not cfg.enable_buckets:
            size = square_size(cfg.resolution, cfg.bucket_step)
            return [size], [size] * len(self.data.items)
        buckets = make_buckets(cfg.resolution, cfg.bucket_step, cfg.max_aspect_ratio)
        return buckets, [nearest_bucket(item.size, buckets) for item in self.data.items]

    def _add_lora(self, adapter: ModelAdapter, transformer: torch.nn.Module) -> list[str]:
        from peft import LoraConfig

        cfg = self.config
        targets = resolve_targets(
            transformer, cfg.target_modules or list(adapter.default_targets), adapter.containers, adapter.kind
        )
        transformer.requires_grad_(False)
        torch.manual_seed(cfg.seed)
        transformer.add_adapter(
            LoraConfig(
                r=cfg.lora_rank,
                lora_alpha=cfg.alpha,
                lora_dropout=cfg.lora_dropout,
                init_lora_weights="gaussian",
                target_modules=targets,
            )
        )
        for param in trainable_parameters(transformer).values():
            param.data = param.data.float()
        if cfg.gradient_checkpointing:
            transformer.enable_gradient_checkpointing()
        transformer.train()
        return targets

    def _resume_point(self) -> Checkpoint | None:
        mode = self.config.resume
        if mode == "none":
            if list_checkpoints(self.ckpt_root):
                raise ConfigError(
                    f"{self.ckpt_root} already holds checkpoints and resume is 'none'; "
                    "set resume: auto to continue, "
                    "or pick a new output_path (checkpoints are never overwritten)"
                )
            return None
        if mode == "auto":
            return newest_valid(self.ckpt_root, warn=lambda m: self.reporter.log(m, "warning"))
        path = Path(mode).expanduser()
        if not path.is_dir():
            raise ConfigError(
                f"resume: {mode} is not a checkpoint folder (use auto, none or a checkpoints/step_N path)"
            )
        return verify(path)

    # Running ------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        self.out.mkdir(parents=True, exist_ok=True)
        self.reporter.open_log(self.out / LOG_FILE)
        if self.rank == 0:
            self.stop.clear_file()
            if not (self.out / CONFIG_FILE).exists():  # the run folder documents how it was made
                save_config(self.config, self.out / CONFIG_FILE)
            for name in remove_stale_staging(self.ckpt_root):
                self.reporter.log(f"removed the unfinished checkpoint {name} left by an interrupted save")
            for name in remove_stale_temps(self.out):
                self.reporter.log(f"removed the unfinished file {name} left by an interrupted write")
        self.stop.install()
        try:
            return self._run()
        finally:
            self.stop.restore()
            self.reporter.close()

    def _run(self) -> dict[str, Any]:
        cfg = self.config
        check_available(cfg)
        if warning := learning_rate_warning(cfg):
            self.reporter.log(warning, "warning")
        self.data = read_training_data(cfg.dataset_path, cfg.trainer, cfg.instance_token, cfg.default_caption)
        resume_from = self._resume_point()
        device = self.accelerator.device
        adapter = make_adapter(cfg, device, self._weight_dtype())
        self.exporter = partial(
            export_state,
            rank=cfg.lora_rank,
            alpha=cfg.alpha,
            dtype=cfg.save_dtype,
            alpha_keys=adapter.alpha_keys,
        )
        self.reporter.log(
            f"loading {cfg.trainer} model from {cfg.model} ({cfg.mixed_precision}, quantize {cfg.quantize}, "
            f"blocks_to_swap {cfg.blocks_to_swap})"
        )
        self.reporter.phase("loading models")
        disk = DiskCache(self.out / "cache", [cfg.trainer, cfg.model, cfg.mixed_precision, cfg.max_sequence_length,
                                              cfg.condition_pixels], cfg.cache_to_disk, self.rank == 0)
        specs = cfg.sample_prompts or adapter.default_samples(self.data.items)
        specs = specs if cfg.sample_every and self.rank == 0 else []
        self.encoded = EncodedData(adapter, cfg, self.data.items, [], disk)
        text_keys = self.encoded.text_keys() + [adapter.sample_key(spec) for spec in specs]
        need_text = not (cfg.cache_text_embeddings and disk.has_all("text", text_keys))
        adapter.load_encoders(text=need_text)
        buckets, sizes = self._sizes(adapter)
        self.encoded.sizes = sizes
        self.reporter.log(self.encoded.cache(self.reporter.phase))
        samples = self.encoded.prepare_samples(specs)
        if cfg.cache_text_embeddings and need_text:
            adapter.release_text_encoders()
        if cfg.cache_latents and not samples:
            adapter.release_vae()
        self.reporter.phase("loading transformer")
        transformer = adapter.load_transformer()
        targets = self._add_lora(adapter, transformer)
        self.block_swap = adapter.place_transformer(transformer)
        if self.block_swap is not None and not cfg.gradient_checkpointing:
            self.reporter.log("blocks_to_swap without gradient_checkpointing keeps every swapped block's weights on "
                              "the GPU until the backward pass; set gradient_checkpointing: true to save memory",
                              "warning")
        params = list(trainable_parameters(transformer).values())
        self.reporter.log(
            f"LoRA rank {cfg.lora_rank} on {len(targets)} layers: "
            f"{sum(p.numel() for p in params):,} trainable parameters"
        )
        optimizer = build_optimizer(cfg, params)
        scheduler = build_scheduler(cfg, optimizer)
        plan = BatchPlan(
            [adapter.bucket_key(item, sizes[i]) for i, item in enumerate(self.data.items)],
            cfg.batch_size,
            self.world,
            cfg.seed,
        )
        if resume_from is not None:
            restore(resume_from, transformer, optimizer, scheduler)
            self._check_compatible(resume_from, plan)
            self.run_state.step = resume_from.step
            self.run_state.last_checkpoint = resume_from
        if self.world > 1:
            ignore_frozen_weights_in_ddp(transformer)
        model, optimizer = self.accelerator.prepare(
            transformer, optimizer, device_placement=[self.block_swap is None, True])
        self.reporter.emit(
            "start",
            trainer=cfg.trainer,
            step=self.run_state.step,
            total=cfg.max_train_steps,
            items=len(self.data.items),
            buckets=len(set(sizes)),
            processes=self.world,
            output=str(self.out),
            resumed_from=str(resume_from.path) if resume_from else None,
            pid=os.getpid(),
            dataset_version=self.data.version,
            dataset_hash=self.data.hash,
        )
        return self._train(adapter, model, transformer, optimizer, scheduler, plan, samples, buckets)

    def _check_compatible(self, checkpoint: Checkpoint, plan: BatchPlan) -> None:
        state = checkpoint.state
        if state.get("global_batch") != plan.global_batch * self.config.gradient_accumulation_steps:
            self.reporter.log(
                "the batch size or process count changed since this checkpoint; training continues, "
                "but the data order differs from an uninterrupted run",
                "warning",
            )
        if state.get("dataset_hash") != self.data.hash:
            self.reporter.log("the training data changed since this checkpoint", "warning")
        self.reporter.log(f"resuming from {checkpoint.path} (step {checkpoint.step})")

    def _train(
        self, adapter, model, transformer, optimizer, scheduler, plan, samples, buckets
    ) -> dict[str, Any]:
        cfg, run, accum = self.config, self.run_state, self.config.gradient_accumulation_steps
        params = list(trainable_parameters(transformer).values())
        while run.step < cfg.max_train_steps:
            if self._stop_requested():
                return self._finish(transformer, optimizer, scheduler, plan, stopped=True)
            started = time.perf_counter()
            step = run.step + 1
            total = torch.zeros((), device=self.accelerator.device)
            for micro in range(accum):
                micro_step = (step - 1) * accum + micro
                gen = torch.Generator().manual_seed(step_seed(cfg.seed, self.rank, micro_step))
                batch = [self.encoded.example(i, gen) for i in plan.batch(micro_step, self.rank)]
                sync = contextlib.nullcontext() if micro == accum - 1 else self.accelerator.no_sync(model)
                with sync, self.accelerator.autocast():
                    loss = adapter.loss(model, batch, gen)
                self.accelerator.backward(loss / accum)
                total += loss.detach() / accum
            mean = float(self.accelerator.reduce(total, "mean") if self.world > 1 else total)
            if self.world > 1:
                self.reporter.log(f"step {step} local loss {float(total):.6f}", "debug", all_ranks=True)
            if not math.isfinite(mean):
                raise NonFiniteLoss(step, mean, self._last_checkpoint_path())
            if cfg.max_grad_norm > 0:
                self.accelerator.clip_grad_norm_(params, cfg.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            run.step, run.last_loss = step, mean
            run.step_times.append(time.perf_counter() - started)
            self._report_step(scheduler)
            if step % cfg.save_every == 0 and step < cfg.max_train_steps:
                self._save(transformer, optimizer, scheduler, plan)
            if cfg.sample_every and (step % cfg.sample_every == 0 or step == cfg.max_train_steps):
                self._sample(adapter, samples, buckets, transformer)
        return self._finish(transformer, optimizer, scheduler, plan, stopped=False)

    def _stop_requested(self) -> bool:
        local = self.stop.requested
        if self.world == 1:
            return local
        flag = torch.tensor([1.0 if local else 0.0], device=self.accelerator.device)
        return bool(self.accelerator.reduce(flag, "sum").item() > 0)

    def _report_step(self, scheduler: Any) -> None:
        run, total = self.run_state, self.config.max_train_steps
        per_step = sum(run.step_times) / len(run.step_times)
        self.reporter.emit(
            "step",
            step=run.step,
            total=total,
            loss=round(run.last_loss, 6),
            lr=scheduler.get_last_lr()[0],
            it_s=round(1.0 / per_step, 3) if per_step else None,
            eta_s=round(per_step * (total - run.step), 1),
        )

    def _last_checkpoint_path(self) -> str | None:
        return str(self.run_state.last_checkpoint.path) if self.run_state.last_checkpoint else None

    def _save(self, transformer, optimizer, scheduler, plan: BatchPlan) -> None:
        cfg, run = self.config, self.run_state
        if run.last_checkpoint is not None and run.last_checkpoint.step == run.step:
            return
        if not all(torch.isfinite(p).all() for p in trainable_parameters(transformer).values()):
            raise NonFiniteLoss(run.step, float("nan"), self._last_checkpoint_path())
        if self.rank == 0:
            micro = run.step * cfg.gradient_accumulation_steps
            epoch, index = plan.position(micro)
            state = {
                "trainer": cfg.trainer,
                "epoch": epoch,
                "batch_index": index,
                "micro_step": micro,
                "global_batch": plan.global_batch * cfg.gradient_accumulation_steps,
                "loss": run.last_loss,
                "dataset_hash": self.data.hash,
                "dataset_version": self.data.version,
            }
            run.last_checkpoint = save(
                self.ckpt_root,
                run.step,
                transformer,
                optimizer,
                scheduler,
                self.exporter,
                lora_metadata(self.config, self.data),
                state,
            )
            self.reporter.emit(
                "checkpoint",
                step=run.step,
                path=str(run.last_checkpoint.path),
                lora=str(run.last_checkpoint.lora),
            )
            for name in prune(self.ckpt_root, cfg.keep_last_n, protect=run.last_checkpoint.path):
                self.reporter.log(f"removed old checkpoint {name} (keep_last_n: {cfg.keep_last_n})")
        self.accelerator.wait_for_everyone()

    def _sample(self, adapter: ModelAdapter, samples: list, buckets: list[tuple[int, int]], transformer) -> None:
        if self.rank == 0 and samples:
            with self.accelerator.autocast():
                paths = write_samples(adapter, samples, buckets, self.config, self.run_state.step, transformer)
            self.reporter.emit("sample", step=self.run_state.step, paths=paths)
        self.accelerator.wait_for_everyone()

    def _finish(self, transformer, optimizer, scheduler, plan, stopped: bool) -> dict[str, Any]:
        cfg, run = self.config, self.run_state
        if self.world > 1:
            total = sum(float(p.detach().double().sum()) for p in trainable_parameters(transformer).values())
            self.reporter.log(f"LoRA weights checksum {total:.12e} after step {run.step}", all_ranks=True)
        if run.step > 0:
            self._save(transformer, optimizer, scheduler, plan)
        lora_path = None
        if self.rank == 0 and not stopped:
            params = {name: p.detach() for name, p in trainable_parameters(transformer).items()}
            lora_path = save_lora(
                self.out / cfg.lora_filename(),
                self.exporter(params),
                {**lora_metadata(self.config, self.data), "steps": run.step},
            )
            self._record_current()
        elif self.rank == 0 and run.last_checkpoint is not None:
            lora_path = run.last_checkpoint.lora
        payload = self.reporter.emit(
            "done",
            status="stopped" if stopped else "finished",
            step=run.step,
            total=cfg.max_train_steps,
            lora_path=str(lora_path) if lora_path else None,
            checkpoint=self._last_checkpoint_path(),
            reason=self.stop.reason if stopped else None,
            output=str(self.out),
        )
        self.accelerator.wait_for_everyone()
        return payload

    def _record_current(self) -> None:
        if not self.config.project_dir:
            return
        from ..core.data.project import Project

        Project.open(self.config.project_dir).set_current(self.config.model_family.lora.project_key, self.out.name)
