"""nmt train's options: where each value comes from, what --help says, and the recipes."""

import dataclasses
import re
from pathlib import Path

from nmt.commands.options import build_parser, make_config
from nmt.config import ARCH_DEFAULTS, Config, ModelConfig, TrainConfig
from nmt.distillation import student_files

ROOT = Path(__file__).resolve().parent.parent


def test_options_come_from_the_dataclass_then_the_transformer_defaults_then_the_config_file_then_the_flags(tmp_path):
    config_file = tmp_path / "run.toml"
    config_file.write_text("[train]\nlr = 1e-3\nlabel_smoothing = 0.2\n[model]\nheads = 8\n")
    args = build_parser("").parse_args(
        ["--arch", "transformer", "--config", str(config_file), "--label-smoothing", "0.3", "--warmup", "50"]
    )
    config = make_config(args)
    assert config.train.batch_tokens == ARCH_DEFAULTS["transformer"]["train"]["batch_tokens"]  # over the dataclass
    assert config.train.ema == ARCH_DEFAULTS["transformer"]["train"]["ema"]
    assert config.model.dropout == ARCH_DEFAULTS["transformer"]["model"]["dropout"]
    assert config.train.lr == 1e-3 and config.model.heads == 8  # file over the Transformer defaults
    assert config.train.label_smoothing == 0.3 and config.train.warmup == 50  # flags over the file
    assert make_config(build_parser("").parse_args(["--arch", "transformer"])) == Config.for_arch("transformer")
    rnn = make_config(build_parser("").parse_args(["--config", str(config_file)]))
    assert rnn.train.batch_tokens == TrainConfig().batch_tokens  # no Transformer defaults for an RNN
    assert rnn.train.ema == TrainConfig().ema and rnn.model.dropout == ModelConfig().dropout


def test_help_shows_the_transformers_own_default_beside_the_common_one(monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # no line breaks inside the phrases below
    help_text = " ".join(build_parser("").format_help().split())
    assert "--dropout DROPOUT (default: 0.1; 0.0 with --arch transformer)" in help_text
    assert "--warmup WARMUP" in help_text and "(default: 200; 300 with --arch transformer)" in help_text
    assert "--ema EMA" in help_text and "(default: 0.0; 0.995 with --arch transformer)" in help_text
    assert "--heads HEADS (default: 4)" in help_text  # no Transformer default of its own


def recipe(name):
    return make_config(build_parser("").parse_args(["--config", f"{ROOT}/recipes/{name}.toml"]))


def test_the_defaults_of_train_nmt_are_the_12_minute_cpu_recipes():
    for name, arch_flags in (("rnn-cpu-12min", []), ("transformer-cpu-12min", ["--arch", "transformer"])):
        from_recipe = recipe(name)
        defaults = make_config(build_parser("").parse_args([*arch_flags, "--time-budget", "12"]))
        assert dataclasses.replace(from_recipe.train, run_dir=defaults.train.run_dir) == defaults.train, name
        assert from_recipe.model == defaults.model and from_recipe.data == defaults.data, name


def test_the_hour_long_rnn_recipe_is_the_12_minute_one_over_an_hour():
    hour, twelve = recipe("rnn-cpu-1h"), recipe("rnn-cpu-12min")
    assert hour.train.time_budget == 60
    assert dataclasses.replace(hour.train, time_budget=12, run_dir=twelve.train.run_dir) == twelve.train
    assert hour.model == twelve.model and hour.data == twelve.data


def test_the_hour_long_transformer_recipe_is_the_12_minute_one_over_an_hour_with_dropout():
    hour, twelve = recipe("transformer-cpu-1h"), recipe("transformer-cpu-12min")
    assert hour.train.time_budget == 60 and hour.model.dropout == 0.1
    assert dataclasses.replace(hour.train, time_budget=12, run_dir=twelve.train.run_dir) == twelve.train
    assert dataclasses.replace(hour.model, dropout=twelve.model.dropout) == twelve.model
    assert hour.data == twelve.data


def test_the_two_hour_teacher_is_the_hour_transformer_wider_over_two_hours():
    two, hour = recipe("transformer-cpu-2h"), recipe("transformer-cpu-1h")
    assert dataclasses.replace(hour.model, d_model=192, ff_size=768) == two.model
    longer = dict(time_budget=120, keep_checkpoints=5, run_dir=two.train.run_dir)  # its last 5, for nmt average
    assert dataclasses.replace(hour.train, **longer) == two.train
    assert two.data == hour.data


def test_the_student_recipe_reads_what_the_pipelines_distillation_writes():
    student, teacher = recipe("transformer-student-cpu"), recipe("transformer-cpu-1h")
    script = (ROOT / "recipes" / "distill-en-fr.sh").read_text()
    folder = Path(re.search(r"nmt distill --teacher (\S+) --run-dir (\S+)", script).group(2))
    assert f"--teacher {teacher.train.run_dir}/best.pt" in script
    files = student_files(folder, student.data.src, student.data.trg)
    assert student.data.corpus == f"{folder}/train.{{lang}}"
    assert (student.data.valid_files, student.data.test_files) == tuple(
        tuple(map(str, files[s])) for s in ("valid", "test")
    )
    assert (student.model.enc_layers, student.model.dec_layers) == (6, 1)  # deep encoder, shallow decoder
    narrower = dict(d_model=student.model.d_model, ff_size=student.model.ff_size)
    assert student.model.d_model < teacher.model.d_model  # less arithmetic at every output token
    assert dataclasses.replace(recipe("transformer-cpu-12min").model, enc_layers=6, dec_layers=1, **narrower) == (
        student.model
    )
    assert student.data.vocab_size < teacher.data.vocab_size  # fewer outputs to score at every step
    rnn = recipe("rnn-student-cpu")
    assert dataclasses.replace(rnn.data, vocab_size=student.data.vocab_size) == student.data
    assert rnn.model.emb_size < recipe("rnn-cpu-12min").model.emb_size
