"""Property-based: any spec, however malformed, validates or fails with one SpecError message.

Random specs are built from the spec's own sections and keys (plus unknown ones) with values of
random types, and from random TOML text and bytes; whatever comes in, the result is a
``StudySpec`` or a ``SpecError`` whose message has one of the defined shapes, never another
exception. The spec format is data only: nothing in it is ever executed.
"""

from __future__ import annotations

import ast
import contextlib
import io
import re
import string
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from sweeplab import trainer
from sweeplab.studies import SpecError, StudySpec, load_spec, parse_spec, spec_from_dict
from sweeplab.studies._spec import _SpecModel
from sweeplab.studies.cli import main

ROOT = Path(__file__).resolve().parents[1]

# Every message a bad spec may give: "<source>: " then either a whole-file problem or the
# dotted key at fault, ": ", and what was expected. One line, no traceback.
MESSAGE = re.compile(
    r"^(?P<source>.+?): (?:not valid TOML: .+|cannot read the spec file: .+"
    r"|\[space\]: missing; a spec needs at least one searched hyperparameter, .+"
    r"|(?P<key>[A-Za-z0-9_.\-\[\]]+): .+)$"
)


def check_message(error: SpecError, source: str) -> None:
    message = str(error)
    assert "\n" not in message and "Traceback" not in message, message
    match = MESSAGE.match(message)
    assert match is not None, message
    assert match["source"] == source, message
    assert error.exit_code == 2


# --- random spec tables ------------------------------------------------------------------------

SECTIONS = {
    name: list(field.annotation.model_fields)
    for name, field in _SpecModel.model_fields.items()
    if name != "space"
}
PARAM_KEYS = ["type", "low", "high", "log", "step", "choices", "value", "when"]
names = st.text(alphabet=string.ascii_lowercase + "_", min_size=1, max_size=12)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(["float", "int", "categorical", "subset", "sgd", "adam", "mlp", "digits",
                     "tpe", "asha", "relu", "noise", "val_acc", "maximize"]),
)  # fmt: skip
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(names, inner, max_size=3)),
    max_leaves=8,
)


@st.composite
def sections(draw: st.DrawFn, name: str) -> dict:
    keys = SECTIONS[name] + ["nonsense", "n_trails"]
    chosen = draw(st.lists(st.sampled_from(keys), max_size=4, unique=True))
    return {key: draw(values) for key in chosen}


@st.composite
def spaces(draw: st.DrawFn) -> object:
    catalog = sorted(trainer.HYPERPARAMETERS)
    if draw(st.integers(0, 9)) == 0:
        return draw(values)  # not even a table
    entries = {}
    for name in draw(st.lists(st.sampled_from([*catalog, "lrr", "x"]), max_size=4, unique=True)):
        if draw(st.booleans()):
            entries[name] = draw(values)  # a fixed value, or something that is not one
        else:
            keys = draw(st.lists(st.sampled_from(PARAM_KEYS), max_size=5, unique=True))
            entries[name] = {key: draw(values) for key in keys}
    return entries


@st.composite
def spec_tables(draw: st.DrawFn) -> dict:
    raw = {}
    for name in draw(st.lists(st.sampled_from([*SECTIONS, "extra"]), max_size=4, unique=True)):
        raw[name] = draw(sections(name)) if name in SECTIONS else draw(values)
    if draw(st.integers(0, 9)) > 0:
        raw["space"] = draw(spaces())
    return raw


@settings(max_examples=300, deadline=None)
@given(spec_tables())
def test_any_spec_table_validates_or_fails_with_one_defined_message(raw: dict) -> None:
    try:
        spec = spec_from_dict(raw, source="random.toml")
    except SpecError as e:
        check_message(e, "random.toml")
    else:
        assert isinstance(spec, StudySpec)
        assert spec_from_dict(spec.to_dict()).to_dict() == spec.to_dict()


@st.composite
def mutated_presets(draw: st.DrawFn) -> tuple[dict, str]:
    """The quickstart spec with one key set to a random value (or removed): often still valid."""
    raw = load_spec("quickstart").to_dict()
    raw["study"].pop("direction")
    section = draw(st.sampled_from([*SECTIONS, "space"]))
    table = raw[section]
    if section == "space" and draw(st.booleans()):
        table = table[draw(st.sampled_from(sorted(table)))]
        if not isinstance(table, dict):
            return raw, section
    key = draw(st.sampled_from(sorted({*table, *PARAM_KEYS[:3], "nonsense"})))
    if draw(st.integers(0, 4)) == 0:
        table.pop(key, None)
    else:
        table[key] = draw(values)
    return raw, section


@settings(max_examples=300, deadline=None)
@given(mutated_presets())
def test_a_preset_with_one_random_value_validates_or_names_what_is_wrong(case) -> None:
    raw, _ = case
    try:
        spec = spec_from_dict(raw, source="mutated.toml")
    except SpecError as e:
        check_message(e, "mutated.toml")
    else:
        assert spec_from_dict(spec.to_dict()).to_dict() == spec.to_dict()


# --- random TOML text and bytes ------------------------------------------------------------------

toml_lines = st.one_of(
    st.sampled_from(["[study]", "[budget]", "[search]", "[space.lr]", "[space]", "[[space]]",
                     "[search.resources]", "[model]", "[data]", "[space.optimizer]"]),
    st.builds(lambda k, v: f"{k} = {v}", st.sampled_from(
        [k for keys in SECTIONS.values() for k in keys] + PARAM_KEYS + ["lr", "x"]
    ), st.sampled_from(["1", "0", "-3", "1e30", "nan", "inf", '"adam"', "true", "[]",
                        "[1, 2]", '["sgd", "adam"]', "{ optimizer = 'sgd' }", "0.5", "'"])),
    st.text(max_size=30),
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.lists(toml_lines, max_size=12))
def test_any_toml_text_validates_or_fails_with_one_defined_message(lines: list[str]) -> None:
    try:
        parse_spec("\n".join(lines), source="random.toml")
    except SpecError as e:
        check_message(e, "random.toml")


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.binary(max_size=200))
def test_any_bytes_as_a_spec_file_fail_with_one_defined_message(tmp_path, data: bytes) -> None:
    path = tmp_path / "bytes.toml"
    path.write_bytes(data)
    try:
        load_spec(path)
    except SpecError as e:
        check_message(e, str(path))


@settings(
    max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(toml_lines, min_size=1, max_size=12))
def test_the_cli_turns_a_bad_spec_into_exit_2_and_one_message(tmp_path, lines: list[str]) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    try:
        load_spec(path)
    except SpecError as e:
        expected = f"error: {e}"
    else:
        assume(False)  # a valid spec would start a run
    err = io.StringIO()
    with contextlib.redirect_stderr(err), pytest.raises(SystemExit) as code:
        main(["run", str(path)])
    assert code.value.code == 2
    # Exactly the one message (the console may wrap it), nothing else, no database.
    assert " ".join(err.getvalue().split()) == " ".join(expected.split())
    assert not (tmp_path / "study.db").exists() and not Path("sweeplab.db").exists()


# --- the spec format cannot execute code ----------------------------------------------------------

PAYLOADS = [
    "__import__('os').system('touch {marker}')",
    "open('{marker}', 'w').write('x')",
    "exec(\"open('{marker}','w')\")",
    "lambda: open('{marker}', 'w')",
    "!!python/object/apply:os.system ['touch {marker}']",
    "${{touch {marker}}}",
    "$(touch {marker})",
]


@pytest.mark.parametrize("payload", PAYLOADS)
@pytest.mark.parametrize(
    "where",
    ["[study]\nname = {value}\n", "[data]\nroot = {value}\n", "[space]\nlr = {value}\n",
     "[space.optimizer]\ntype = 'categorical'\nchoices = [{value}]\n"],
)  # fmt: skip
def test_a_spec_holding_code_is_a_string_that_never_runs(tmp_path, payload, where) -> None:
    marker = tmp_path / "pwned"
    value = repr(payload.format(marker=marker)).replace("\\\\", "\\")
    text = where.format(value=value)
    if "[space" not in text:
        text += "[space]\nlr = { type = 'float', low = 0.001, high = 0.1 }\n"
    try:
        spec = parse_spec(text, source="code.toml")
    except SpecError as e:
        check_message(e, "code.toml")
    else:  # accepted only where any string is: then it is kept as that string
        stored = spec.to_dict()
        assert payload.format(marker=marker) in repr(stored)
    assert not marker.exists()


def test_no_product_code_evaluates_text() -> None:
    """The guarantee above, for the whole product: no eval/exec, no pickle or YAML loading."""
    offenders = []
    for package in ("studies", "searchspace", "trainer", "analysis"):
        for path in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Name)
                    and node.func.id in ("eval", "exec", "__import__")
                ):
                    offenders.append(f"{path.name}:{node.lineno} {node.func.id}()")
                if isinstance(node, ast.Import | ast.ImportFrom):
                    modules = [a.name for a in node.names] + [getattr(node, "module", "") or ""]
                    for bad in ("pickle", "yaml", "marshal", "dill", "cloudpickle"):
                        if bad in modules:
                            offenders.append(f"{path.name}:{node.lineno} imports {bad}")
    assert offenders == []
    spec_source = (ROOT / "studies" / "_spec.py").read_text(encoding="utf-8")
    assert "tomllib.loads" in spec_source
