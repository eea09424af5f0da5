"""The rules beyond the schema, each shown failing with the path of the field at fault."""

from collections.abc import Callable
from pathlib import Path

import pytest

from daneel.spec import image_nodes, parse

Problems = Callable[..., list[str]]
Wrap = Callable[[str], str]

MODEL = "{name: m, implementation: SKLEARN_SERVER, modelUri: /models/iris}"


def predictors(*lines: str) -> str:
    return "predictors:\n" + "".join(f"- {line}\n" for line in lines)


@pytest.mark.parametrize(
    "lines",
    [
        (f"{{name: a, traffic: 75, graph: {MODEL}}}", f"{{name: b, traffic: 25, graph: {MODEL}}}"),
        (f"{{name: only, graph: {MODEL}}}",),
        (f"{{name: only, traffic: 100, graph: {MODEL}}}",),
        (f"{{name: a, graph: {MODEL}}}", f"{{name: s, shadow: true, traffic: 30, graph: {MODEL}}}"),
        (
            f"{{name: a, traffic: 50, graph: {MODEL}}}",
            f"{{name: b, traffic: 50, graph: {MODEL}}}",
            f"{{name: s, shadow: true, graph: {MODEL}}}",
        ),
    ],
)
def test_traffic_that_adds_up_is_valid(problems: Problems, with_spec: Wrap, lines: tuple[str, ...]) -> None:
    assert problems(with_spec(predictors(*lines))) == []


def test_traffic_must_sum_to_100_over_predictors_that_are_not_shadows(problems: Problems, with_spec: Wrap) -> None:
    text = with_spec(
        predictors(
            f"{{name: a, traffic: 60, graph: {MODEL}}}",
            f"{{name: b, traffic: 30, graph: {MODEL}}}",
            f"{{name: s, shadow: true, traffic: 10, graph: {MODEL}}}",
        )
    )
    assert problems(text) == [
        "spec.predictors: traffic of the predictors that are not shadows sums to 90 (a 60, b 30); expected 100"
    ]


def test_a_single_predictor_takes_all_or_unset_traffic(problems: Problems, with_spec: Wrap) -> None:
    text = with_spec(predictors(f"{{name: a, traffic: 40, graph: {MODEL}}}"))
    assert problems(text) == [
        "spec.predictors[0].traffic: a single predictor takes every request; expected 100 or no traffic, got 40"
    ]


def test_a_shadow_alone_is_not_enough(problems: Problems, with_spec: Wrap) -> None:
    text = with_spec(predictors(f"{{name: s, shadow: true, graph: {MODEL}}}"))
    assert problems(text) == ["spec.predictors: expected at least one predictor that is not a shadow"]


def test_one_shadow_at_most(problems: Problems, with_spec: Wrap) -> None:
    text = with_spec(
        predictors(
            f"{{name: a, graph: {MODEL}}}",
            f"{{name: s1, shadow: true, graph: {MODEL}}}",
            f"{{name: s2, shadow: true, graph: {MODEL}}}",
        )
    )
    assert problems(text) == ["spec.predictors[2].shadow: one shadow predictor at most; spec.predictors[1] is one"]


def test_predictor_names_are_unique(problems: Problems, with_spec: Wrap) -> None:
    text = with_spec(
        predictors(f"{{name: a, traffic: 50, graph: {MODEL}}}", f"{{name: a, traffic: 50, graph: {MODEL}}}")
    )
    assert problems(text) == ["spec.predictors[1].name: 'a' is already the name of spec.predictors[0]"]


def test_node_names_are_unique_within_a_predictor(problems: Problems, with_graph: Wrap) -> None:
    text = with_graph(
        """
        name: combiner
        implementation: AVERAGE_COMBINER
        children:
        - {name: m, modelUri: /a}
        - {name: m, modelUri: /b}
        """
    )
    assert problems(text) == [
        "spec.predictors[0].graph.children[1].name: 'm' is already the name of spec.predictors[0].graph.children[0]"
    ]


def test_two_predictors_may_name_their_nodes_alike(problems: Problems, with_spec: Wrap) -> None:
    text = with_spec(
        predictors(f"{{name: a, traffic: 50, graph: {MODEL}}}", f"{{name: b, traffic: 50, graph: {MODEL}}}")
    )
    assert problems(text) == []


@pytest.mark.parametrize(("kind", "implementation"), [("ROUTER", None), ("COMBINER", None), ("MODEL", "RANDOM_ABTEST")])
def test_routers_and_combiners_need_children(
    problems: Problems, with_graph: Wrap, kind: str, implementation: str | None
) -> None:
    node = (
        f"{{name: r, implementation: {implementation}}}"
        if implementation
        else f"{{name: r, type: {kind}, modelUri: /r}}"
    )
    found = problems(with_graph(node))
    expected_kind = "ROUTER" if implementation else kind
    assert f"spec.predictors[0].graph.children: a {expected_kind} needs at least one child" in found


@pytest.mark.parametrize("kind", ["MODEL", "TRANSFORMER", "OUTPUT_TRANSFORMER"])
def test_models_and_transformers_pass_their_output_to_one_child(
    problems: Problems, with_graph: Wrap, kind: str
) -> None:
    text = with_graph(
        f"""
        name: t
        type: {kind}
        modelUri: /t
        children:
        - {{name: a, modelUri: /a}}
        - {{name: b, modelUri: /b}}
        """
    )
    [problem] = problems(text)
    assert problem.startswith(f"spec.predictors[0].graph.children: a {kind} passes its output on to one child at most")
    assert "got 2 (a, b)" in problem
    assert "thrown away" in problem
    assert "ROUTER or COMBINER" in problem


def test_a_chain_of_single_children_is_valid(problems: Problems, with_graph: Wrap) -> None:
    text = with_graph(
        """
        name: t
        type: TRANSFORMER
        modelUri: /t
        children:
        - name: m
          modelUri: /m
          children:
          - {name: o, type: OUTPUT_TRANSFORMER, modelUri: /o}
        """
    )
    assert problems(text) == []


def test_a_node_whose_methods_route_may_have_several_children(problems: Problems, with_graph: Wrap) -> None:
    text = with_graph(
        """
        name: r
        type: UNKNOWN_TYPE
        methods: [TRANSFORM_INPUT, ROUTE]
        modelUri: /r
        children: [{name: a, modelUri: /a}, {name: b, modelUri: /b}]
        """
    )
    assert problems(text) == []


def test_unknown_type_needs_methods(problems: Problems, with_graph: Wrap) -> None:
    text = with_graph("{name: x, type: UNKNOWN_TYPE, modelUri: /x}")
    assert problems(text) == ["spec.predictors[0].graph.methods: a node of type UNKNOWN_TYPE must list its methods"]


@pytest.mark.parametrize(
    ("implementation", "fixed", "given"),
    [
        ("RANDOM_ABTEST", "ROUTER", "MODEL"),
        ("EPSILON_GREEDY", "ROUTER", "COMBINER"),
        ("THOMPSON_SAMPLING", "ROUTER", "TRANSFORMER"),
        ("AVERAGE_COMBINER", "COMBINER", "ROUTER"),
        ("SKLEARN_SERVER", "MODEL", "TRANSFORMER"),
        ("TRITON_SERVER", "MODEL", "OUTPUT_TRANSFORMER"),
    ],
)
def test_a_builtin_implementation_fixes_the_type(
    problems: Problems, with_graph: Wrap, implementation: str, fixed: str, given: str
) -> None:
    text = with_graph(
        f"""
        name: n
        implementation: {implementation}
        type: {given}
        modelUri: /n
        children: [{{name: a, modelUri: /a}}, {{name: b, modelUri: /b}}]
        """
    )
    expected = f"spec.predictors[0].graph.type: {implementation} is a {fixed}; expected {fixed} or no type, got {given}"
    assert expected in problems(text)


def test_a_builtin_implementation_may_repeat_its_own_type(problems: Problems, with_graph: Wrap) -> None:
    assert problems(with_graph("{name: m, implementation: SKLEARN_SERVER, type: MODEL, modelUri: /m}")) == []


def test_a_prepackaged_server_needs_a_model_uri(problems: Problems, with_graph: Wrap) -> None:
    assert problems(with_graph("{name: m, implementation: XGBOOST_SERVER}")) == [
        "spec.predictors[0].graph: XGBOOST_SERVER serves saved model files; expected a modelUri"
    ]


@pytest.mark.parametrize("count", [1, 3])
def test_random_abtest_routes_between_exactly_two_children(problems: Problems, with_graph: Wrap, count: int) -> None:
    children = ", ".join(f"{{name: c{i}, modelUri: /c{i}}}" for i in range(count))
    text = with_graph(f"{{name: ab, implementation: RANDOM_ABTEST, children: [{children}]}}")
    assert problems(text) == [
        f"spec.predictors[0].graph.children: RANDOM_ABTEST routes between exactly 2 children, got {count}"
    ]


@pytest.mark.parametrize("implementation", ["EPSILON_GREEDY", "THOMPSON_SAMPLING"])
def test_n_branches_must_match_the_children(problems: Problems, with_graph: Wrap, implementation: str) -> None:
    text = with_graph(
        f"""
        name: bandit
        implementation: {implementation}
        parameters:
        - {{name: seed, value: "1", type: INT}}
        - {{name: n_branches, value: "3", type: INT}}
        children: [{{name: a, modelUri: /a}}, {{name: b, modelUri: /b}}]
        """
    )
    assert problems(text) == [
        "spec.predictors[0].graph.parameters[1].value: n_branches is 3 but the router has 2 children; "
        "expected them equal"
    ]


def test_n_branches_may_be_left_out(problems: Problems, with_graph: Wrap) -> None:
    text = with_graph("{name: b, implementation: EPSILON_GREEDY, children: [{name: a, modelUri: /a}]}")
    assert problems(text) == []


@pytest.mark.parametrize(
    ("kind", "value", "message"),
    [
        ("INT", "three", "'three' is not a valid INT"),
        ("FLOAT", "fast", "'fast' is not a valid FLOAT"),
        ("DOUBLE", "[1]", "'[1]' is not a valid DOUBLE"),
        ("BOOL", "maybe", "'maybe' is not a valid BOOL"),
        ("JSON", "{oops", "'{oops' is not a valid JSON"),
    ],
)
def test_parameter_values_convert_to_their_type(
    problems: Problems, with_graph: Wrap, kind: str, value: str, message: str
) -> None:
    text = with_graph(
        f"""
        name: m
        modelUri: /m
        parameters:
        - {{name: ok, value: "1", type: INT}}
        - {{name: bad, value: '{value}', type: {kind}}}
        """
    )
    assert problems(text) == [f"spec.predictors[0].graph.parameters[1].value: {message}"]


def test_a_parameter_is_given_once(problems: Problems, with_graph: Wrap) -> None:
    text = with_graph("{name: m, modelUri: /m, parameters: [{name: a, value: x}, {name: a, value: y}]}")
    assert problems(text) == ["spec.predictors[0].graph.parameters[1].name: parameter 'a' is given twice"]


def test_a_remote_node_needs_a_port(problems: Problems, with_graph: Wrap) -> None:
    assert problems(with_graph("{name: r, endpoint: {service_host: models.internal}}")) == [
        "spec.predictors[0].graph.endpoint.service_port: a remote node (with service_host) needs service_port"
    ]
    assert problems(with_graph("{name: r, endpoint: {service_host: models.internal, service_port: 9000}}")) == []


def test_a_node_with_nothing_to_run_is_an_error(problems: Problems, with_graph: Wrap) -> None:
    [problem] = problems(with_graph("{name: lonely, type: MODEL}"))
    assert problem.startswith("spec.predictors[0].graph: names no implementation, modelUri, endpoint or container")
    assert "--components DIR where DIR/lonely holds its code" in problem


SELDON_IMAGE_NODE = """
predictors:
- name: p
  componentSpecs:
  - spec:
      containers:
      - {name: scaler, image: example/scaler:1}
  graph:
    name: scaler
    type: TRANSFORMER
    children:
    - {name: m, modelUri: /m}
"""


def test_a_node_named_as_a_container_is_valid_and_listed(problems: Problems, with_spec: Wrap) -> None:
    text = with_spec(SELDON_IMAGE_NODE)
    assert problems(text) == []
    assert [node.name for _, node in image_nodes(parse(text))] == ["scaler"]


def test_components_must_hold_a_folder_per_image_node(problems: Problems, with_spec: Wrap, tmp_path: Path) -> None:
    text = with_spec(SELDON_IMAGE_NODE)
    assert problems(text, components=tmp_path) == [
        f"spec.predictors[0].graph: expected a folder {tmp_path / 'scaler'} for this node "
        "(it names no implementation or modelUri)"
    ]
    (tmp_path / "scaler").mkdir()
    assert problems(text, components=tmp_path) == []


def test_sticky_routing_names_a_header_or_a_field(problems: Problems, with_spec: Wrap) -> None:
    two = predictors(f"{{name: a, traffic: 50, graph: {MODEL}}}", f"{{name: b, traffic: 50, graph: {MODEL}}}")
    assert problems(with_spec(two + "sticky: {header: X-User}\n")) == []
    assert problems(with_spec(two + "sticky: {}\n")) == ["spec.sticky: expected exactly one of header or field"]
    both = "sticky: {header: X-User, field: meta.tags.user}\n"
    assert problems(with_spec(two + both)) == ["spec.sticky: expected exactly one of header or field"]


def test_every_problem_is_reported_at_once(problems: Problems, with_spec: Wrap) -> None:
    text = with_spec(
        predictors(
            "{name: a, traffic: 60, graph: {name: r, implementation: RANDOM_ABTEST, children: [{name: x}]}}",
            "{name: a, traffic: 30, graph: {name: m, modelUri: /m, parameters: [{name: n, value: x, type: INT}]}}",
        )
    )
    assert [problem.split(":")[0] for problem in problems(text)] == [
        "spec.predictors",
        "spec.predictors[0].graph.children",
        "spec.predictors[0].graph.children[0]",
        "spec.predictors[1].name",
        "spec.predictors[1].graph.parameters[0].value",
    ]


def test_an_unknown_seldon_style_implementation_is_an_error(problems: Problems, with_graph: Wrap) -> None:
    [problem] = problems(with_graph("{name: m, implementation: SKLEARN_SEVER, modelUri: /m}"))
    assert problem.startswith(
        "spec.predictors[0].graph.implementation: unknown implementation 'SKLEARN_SEVER'; did you mean SKLEARN_SERVER? "
        "expected one of RANDOM_ABTEST, EPSILON_GREEDY"
    )
    assert problem.endswith(", or pkg.module:Class")


@pytest.mark.parametrize("implementation", ["pkg.models:Scorer", "Scorer", "models.Scorer", "UNKNOWN_IMPLEMENTATION"])
def test_classes_and_seldons_default_are_implementations(
    problems: Problems, with_graph: Wrap, implementation: str
) -> None:
    assert problems(with_graph(f"{{name: m, implementation: {implementation}, modelUri: /m}}")) == []


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("protocol", "grpc", "seldon, v2, tensorflow, kfserving"),
        ("transport", "http", "rest, grpc"),
        ("serverType", "batch", "rpc, kafka"),
    ],
)
def test_seldons_spec_settings_take_seldons_values(
    problems: Problems, with_spec: Wrap, field: str, value: str, expected: str
) -> None:
    text = with_spec(predictors(f"{{name: a, graph: {MODEL}}}") + f"{field}: {value}\n")
    assert problems(text) == [f"spec.{field}: expected one of {expected}; got {value!r}"]
    good = expected.split(", ")[0]
    assert problems(with_spec(predictors(f"{{name: a, graph: {MODEL}}}") + f"{field}: {good}\n")) == []


DETECTED = "{name: m, implementation: SKLEARN_SERVER, modelUri: /models/iris, detectors: [%s]}"


def test_detectors_on_a_predictor_and_its_nodes_are_valid(problems: Problems, with_spec: Wrap) -> None:
    node = DETECTED % "{name: odd, kind: outlier, modelUri: det/odd, action: reject}"
    on_predictor = "{name: shift, kind: drift, modelUri: det/shift, parameters: {window: 50}}"
    assert problems(with_spec(predictors(f"{{name: p, detectors: [{on_predictor}], graph: {node}}}"))) == []


@pytest.mark.parametrize(
    ("detector", "expected"),
    [
        ("{name: d, kind: outlier}", "expected modelUri (a folder `daneel detector fit` wrote) or implementation"),
        ("{name: d, kind: drift, modelUri: x, mode: sync}", "mode: a drift detector tests windows of many requests"),
        ("{name: d, kind: drift, modelUri: x, action: reject}", "action: only an outlier detector can reject"),
        ("{name: d, kind: outlier, modelUri: x, mode: async, action: reject}", "action: an async detector scores"),
    ],
)
def test_a_detector_that_cannot_work_is_refused_naming_its_field(
    problems: Problems, with_spec: Wrap, detector: str, expected: str
) -> None:
    found = problems(with_spec(predictors(f"{{name: p, graph: {DETECTED % detector}}}")))
    assert len(found) == 1
    assert found[0].startswith("spec.predictors[0].graph.detectors[0]")
    assert expected in found[0]


def test_detector_names_are_unique_in_a_predictor(problems: Problems, with_spec: Wrap) -> None:
    node = DETECTED % "{name: d, kind: outlier, modelUri: x}"
    text = with_spec(predictors(f"{{name: p, detectors: [{{name: d, kind: drift, modelUri: y}}], graph: {node}}}"))
    assert problems(text) == [
        "spec.predictors[0].graph.detectors[0].name: 'd' is already the name of spec.predictors[0].detectors[0]"
    ]


def test_a_combiner_takes_no_detectors(problems: Problems, with_spec: Wrap) -> None:
    child = "{name: c1, implementation: SKLEARN_SERVER, modelUri: /m}"
    detectors = "[{name: d, kind: outlier, modelUri: x}]"
    combiner = f"{{name: avg, implementation: AVERAGE_COMBINER, children: [{child}], detectors: {detectors}}}"
    found = problems(with_spec(predictors(f"{{name: p, graph: {combiner}}}")))
    assert found == [
        "spec.predictors[0].graph.detectors: a COMBINER's input is its children's answers;"
        " put detectors on its children or the predictor"
    ]


def test_a_detector_kind_must_be_outlier_or_drift(problems: Problems, with_spec: Wrap) -> None:
    found = problems(with_spec(predictors(f"{{name: p, graph: {DETECTED % '{name: d, kind: anomaly, modelUri: x}'}}}")))
    assert len(found) == 1
    assert found[0].startswith("spec.predictors[0].graph.detectors[0].kind:")
    assert "'outlier'" in found[0] and "'drift'" in found[0]


@pytest.mark.parametrize("implementation", ["NODEJS_SERVER", "JAVA_SERVER"])
@pytest.mark.parametrize("kind", ["MODEL", "TRANSFORMER"])
def test_a_language_server_is_an_implementation_of_any_type(
    problems: Problems, with_graph: Wrap, implementation: str, kind: str
) -> None:
    text = with_graph(f"{{name: m, implementation: {implementation}, type: {kind}, modelUri: s3://models/m}}")
    assert problems(text) == []


def test_a_language_server_needs_a_model_uri(problems: Problems, with_graph: Wrap) -> None:
    assert problems(with_graph("{name: m, implementation: JAVA_SERVER}")) == [
        "spec.predictors[0].graph: JAVA_SERVER serves the Java component in a folder; expected a modelUri"
    ]


def test_a_misspelt_language_server_is_named(problems: Problems, with_graph: Wrap) -> None:
    [problem] = problems(with_graph("{name: m, implementation: NODEJS_SERVR, modelUri: /m}"))
    assert "did you mean NODEJS_SERVER? " in problem
    assert "HUGGINGFACE_SERVER, NODEJS_SERVER, JAVA_SERVER, or pkg.module:Class" in problem
