"""Object names and label values valid for Kubernetes, however the deployment spells its parts."""

from daneel.k8s.names import label_value, labels, object_name


def test_names_are_dns_labels() -> None:
    assert object_name("Iris_ABtest", "Main") == "iris-abtest-main"
    assert object_name("1st", "model") == "d-1st-model"


def test_long_names_keep_their_start_and_differ_by_a_hash() -> None:
    first, second = object_name("x" * 70, "a"), object_name("x" * 70, "b")
    assert len(first) == 63 and first.startswith("xxxx") and first != second


def test_label_values_are_valid_and_short() -> None:
    assert label_value("my model/v2") == "my-model-v2"
    assert len(label_value("y" * 100)) <= 63


def test_every_object_carries_the_common_labels() -> None:
    assert labels("iris", "predictor", "main") == {
        "app.kubernetes.io/name": "daneel",
        "app.kubernetes.io/managed-by": "daneel",
        "daneel.dev/deployment": "iris",
        "app.kubernetes.io/component": "predictor",
        "daneel.dev/predictor": "main",
    }
