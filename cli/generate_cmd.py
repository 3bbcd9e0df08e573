"""``flenwheel generate``, ``flenwheel compare`` and ``flenwheel prompts``: step 1.5 from the shell."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any

import click

from ..core.data.text_lists import split_list
from ..core.models.registry import CHARACTER, accepted_names, default_family
from ._memory import load_options, memory_options


def model_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The character base's loading options, shared by every command that renders."""
    options = [
        click.option(
            "--base",
            type=click.Choice(accepted_names(CHARACTER)),
            default=default_family(CHARACTER).name,
            show_default=True,
            help="Character base model family (flenwheel models lists them).",
        ),
        click.option(
            "--model",
            help="Diffusers folder or hub id of the base (configs, tokenizers and any part not given as a "
            "file); default: the base's hub id.",
        ),
        click.option(
            "--transformer-file",
            type=click.Path(dir_okay=False),
            help="Transformer single file, e.g. ComfyUI's models/diffusion_models/flux1-dev.safetensors.",
        ),
        click.option(
            "--vae-file", type=click.Path(dir_okay=False), help="Autoencoder single file (ae.safetensors)."
        ),
        click.option(
            "--clip-l-file", type=click.Path(dir_okay=False), help="CLIP-L text encoder (clip_l.safetensors)."
        ),
        click.option(
            "--t5-file", type=click.Path(dir_okay=False), help="T5-XXL text encoder (t5xxl_fp16.safetensors)."
        ),
    ]
    return memory_options("T5-XXL")(functools.reduce(lambda f, option: option(f), reversed(options), command))


def render_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Prompt selection and render settings, shared by generate and compare."""
    options = [
        click.option(
            "--prompts",
            "prompt_files",
            multiple=True,
            type=click.Path(dir_okay=False),
            help="YAML prompt file extending the built-in set (repeatable).",
        ),
        click.option("--no-builtin", is_flag=True, help="Use only the --prompts files."),
        click.option(
            "--families", help="Comma list of families (angles, expressions, scenarios, poses, yours)."
        ),
        click.option("--prompt-ids", help="Comma list of prompt ids."),
        click.option(
            "--seed",
            "base_seed",
            type=int,
            default=0,
            show_default=True,
            help="Run seed; each image's seed derives from it, the prompt id and the variant.",
        ),
        click.option("--width", type=int, help="Image width (default: the prompt set's, 1024)."),
        click.option("--height", type=int, help="Image height (default: the prompt set's, 1024)."),
        click.option("--steps", type=int, help="Denoising steps (default 28)."),
        click.option("--guidance", type=float,
                     help="Guidance (default 3.5): FLUX.1's distilled guidance; the CFG scale of FLUX.2 [klein] "
                     "and Z-Image (0 for Z-Image-Turbo)."),
        click.option(
            "--true-cfg", type=float, help="True CFG scale (>1 enables negative prompts; twice the time)."
        ),
        click.option(
            "--negative-prompt", help="Negative prompt for every prompt without its own (needs --true-cfg)."
        ),
    ]
    return functools.reduce(lambda f, option: option(f), reversed(options), command)


def _split(text: str | None) -> list[str] | None:
    return split_list(text) or None


def load_model(kw: dict[str, Any]) -> Any:
    from ..core.models.character_base import load_character_base
    from ..core.models.flux_single_file import FluxFiles

    files = FluxFiles(
        transformer=kw["transformer_file"], vae=kw["vae_file"], clip_l=kw["clip_l_file"], t5=kw["t5_file"]
    )
    return load_character_base(kw["base"], kw["model"], files, load_options(kw))


def make_plan(
    project: Any, kw: dict[str, Any], variants: int | None, firsts: bool = False
) -> tuple[Any, list[Any]]:
    from ..core.generate.prompt_sets import plan_run

    run = {key: kw[key] for key in ("width", "height", "steps", "guidance", "true_cfg", "negative_prompt")}
    return plan_run(
        project,
        kw["prompt_files"],
        not kw["no_builtin"],
        _split(kw["families"]),
        _split(kw["prompt_ids"]),
        variants,
        kw["base_seed"],
        run,
        first_of_each_family=firsts,
    )


def make_aimed_plan(project: Any, kw: dict[str, Any], variants: int | None, specs: list[Any] | None) -> Any:
    """The generation plan, aimed by the newest card and the training set of the character LoRA in
    ``specs`` (None: not aimed)."""
    from ..core.generate.aim import aimed_plan, load_needs
    from ..core.models.character_lora import lora_version_of

    needs = None
    if specs is not None:
        version = next((v for spec in specs if (v := lora_version_of(spec.path))), None)
        needs = load_needs(project, version)
    run = {key: kw[key] for key in ("width", "height", "steps", "guidance", "true_cfg", "negative_prompt")}
    return aimed_plan(project, needs, kw["prompt_files"], not kw["no_builtin"], _split(kw["families"]),
                      _split(kw["prompt_ids"]), variants, kw["base_seed"], run)


@click.command("generate")
@click.argument("project", type=click.Path(file_okay=False))
@click.option(
    "--lora",
    "loras",
    multiple=True,
    help="char_vN, latest or a .safetensors path, with :STRENGTH (e.g. char_v1:0.9); repeat to stack.",
)
@click.option("--base-only", is_flag=True,
              help="Generate with the base model and no LoRA (a baseline); without it, --lora is required.")
@render_options
@click.option("--variants", type=int, help="Images per prompt, each with its own seed (default 4).")
@click.option(
    "--batch-size",
    type=int,
    default=1,
    show_default=True,
    help="Images per pipeline call; halved automatically on a GPU out-of-memory error.",
)
@click.option(
    "--version", help="Synthetic dataset version to write (default: resume the latest if it matches)."
)
@click.option("--new-version", is_flag=True, help="Always start a new data/synthetic/vN.")
@click.option("--limit", type=int, help="Only the first N planned images (a quick look).")
@click.option("--finish", is_flag=True, help="Seal the version once every planned image is in it.")
@click.option("--dry-run", is_flag=True, help="Print the plan (and its aimed allocation) and exit without loading "
              "the model.")
@click.option("--aim/--no-aim", default=True, show_default=True,
              help="Share the images out by need: the last model card's failed or unverified cells and what the "
              "LoRA's training set lacks (same total). --no-aim: the same variants for every prompt.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@model_options
def generate_cmd(
    project: str,
    loras: tuple[str, ...],
    base_only: bool,
    variants: int | None,
    batch_size: int,
    version: str | None,
    new_version: bool,
    limit: int | None,
    finish: bool,
    dry_run: bool,
    aim: bool,
    as_json: bool,
    **kw: Any,
) -> None:
    """Step 1.5: generate data/synthetic/vN/ with the character base + its LoRA (prompts x variants)."""
    from ..core.data.project import Project
    from ..core.generate.generate import run_generation
    from ..core.models.character_lora import parse_lora_ref

    if bool(loras) == base_only:
        raise click.UsageError(
            "say which model generates: --lora char_vN (or latest, or a .safetensors path) for the character, "
            "or --base-only for the base model without a LoRA" if not loras else
            "--base-only generates without a LoRA: drop it, or drop --lora"
        )
    opened = Project.open(project)
    specs = [parse_lora_ref(text, opened) for text in loras]
    aimed = make_aimed_plan(opened, kw, variants, specs if aim else None)
    prompt_set, plan = aimed.prompt_set, aimed.plan[:limit] if limit else aimed.plan
    if dry_run:
        for item in plan:
            click.echo(
                f"{item.family:12s} {item.prompt_id:22s} v{item.variant} seed {item.seed:<11d} {item.prompt}"
            )
        for line in aimed.allocation.lines() if aimed.allocation else ["not aimed (--no-aim)"]:
            click.echo(line)
        click.echo(f"{len(plan)} images planned; LoRAs: {', '.join(s.path for s in specs) or 'none'}")
        return
    handle = load_model(kw).with_loras(specs)

    def show(done: int, total: int, image: Any, record: Any) -> None:
        if not as_json:
            click.echo(f"[{done}/{total}] {record.filename} seed {record.seed} ({record.seconds:.1f} s)")

    info = {
        "prompt_sets": prompt_set.sources,
        "families": prompt_set.families(),
        "variants": variants or prompt_set.variants,
        "base_seed": kw["base_seed"],
        "aim": aimed.allocation.to_json() if aimed.allocation else None,
    }
    report = run_generation(
        opened,
        handle,
        plan,
        version=version,
        new_version=new_version,
        batch_size=batch_size,
        finish=finish,
        on_image=show,
        info=info,
    )
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2))
    else:
        for line in report.lines():
            click.echo(line)


@click.command("compare")
@click.argument("project", type=click.Path(file_okay=False))
@click.option(
    "--lora",
    "columns",
    multiple=True,
    required=True,
    help="One grid column: char_v1, char_v2:0.8, 'char_v2:0.6,0.8,1.0' (a sweep), "
    "'char_v2 + film.safetensors:0.5' or base. Repeat for more columns.",
)
@render_options
@click.option(
    "--variants", type=int, default=1, show_default=True, help="Seeds per prompt (grid rows per prompt)."
)
@click.option(
    "--cell-size", type=int, default=384, show_default=True, help="Size of each grid cell in pixels."
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    help="Grid PNG path (default: PROJECT/benchmarks/comparisons/compare_TIME.png).",
)
@model_options
def compare_cmd(
    project: str, columns: tuple[str, ...], variants: int, cell_size: int, out: str | None, **kw: Any
) -> None:
    """Render the same prompts and seeds with several LoRAs or strengths into one labelled grid.

    Without --prompt-ids or --families, the first prompt of each family is used.
    """
    from ..core.data.project import Project
    from ..core.generate.compare import compare_loras, parse_columns, save_comparison

    opened = Project.open(project)
    parsed = parse_columns(columns, opened)
    _, plan = make_plan(opened, kw, variants, firsts=not kw["prompt_ids"] and not kw["families"])
    handle = load_model(kw)
    comparison = compare_loras(
        handle,
        parsed,
        plan,
        cell_size=cell_size,
        on_cell=lambda done, total, image: click.echo(f"[{done}/{total}]"),
    )
    path = save_comparison(comparison, opened, out)
    click.echo(comparison.legend())
    click.echo(f"grid: {path}")


@click.group("prompts")
def prompts_group() -> None:
    """Generation prompt sets (step 1.5)."""


@prompts_group.command("show")
@click.option(
    "--prompts",
    "prompt_files",
    multiple=True,
    type=click.Path(dir_okay=False),
    help="YAML prompt file extending the built-in set (repeatable); it is validated.",
)
@click.option("--no-builtin", is_flag=True, help="Use only the --prompts files.")
@click.option("--families", help="Comma list of families to show.")
@click.option("--json", "as_json", is_flag=True, help="Print the prompts as JSON.")
def show_cmd(prompt_files: tuple[str, ...], no_builtin: bool, families: str | None, as_json: bool) -> None:
    """List (and validate) the prompt set a run would use."""
    from ..core.generate.prompt_sets import load_prompt_set

    prompt_set = load_prompt_set(prompt_files, builtin=not no_builtin).select(_split(families))
    if as_json:
        click.echo(
            json.dumps(
                {
                    "sources": prompt_set.sources,
                    "variants": prompt_set.variants,
                    "defaults": vars(prompt_set.defaults),
                    "prompts": [vars(p) for p in prompt_set.prompts],
                },
                indent=2,
                default=list,
            )
        )
        return
    for prompt in prompt_set.prompts:
        tags = ", ".join(f"{k}={v}" for k in ("angle", "expression", "pose") if (v := getattr(prompt, k)))
        click.echo(f"{prompt.family:12s} {prompt.id:22s} {tags:40s} {prompt.text}")
    click.echo(
        f"{len(prompt_set.prompts)} prompts x {prompt_set.variants} variants "
        f"= {len(prompt_set.prompts) * prompt_set.variants} images; from {', '.join(prompt_set.sources)}"
    )


def register(cli: click.Group) -> None:
    cli.add_command(generate_cmd)
    cli.add_command(compare_cmd)
    cli.add_command(prompts_group)
