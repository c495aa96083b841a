"""Permissions: only direct grants count; PATCH adds what differs, PUT (purge) sets the exact list."""

from ansible_collections.databricks_claude.gateway.plugins.module_utils.permissions import (
    desired_grants,
    direct_grants,
    grants_patch,
    grants_replacement,
    grants_update,
)

GET = {"object_id": "/serving-endpoints/abc", "access_control_list": [
    {"group_name": "admins", "all_permissions": [
        {"permission_level": "CAN_MANAGE", "inherited": True, "inherited_from_object": ["/serving-endpoints/"]}]},
    {"user_name": "admin@example.test", "display_name": "admin",
     "all_permissions": [{"permission_level": "CAN_MANAGE", "inherited": False}]},
    {"group_name": "developers", "all_permissions": [{"permission_level": "CAN_QUERY", "inherited": False}]},
]}


def test_inherited_grants_are_not_direct():
    assert direct_grants(GET) == {("user_name", "admin@example.test"): "CAN_MANAGE",
                                  ("group_name", "developers"): "CAN_QUERY"}


def test_patch_only_what_differs():
    actual = direct_grants(GET)
    assert grants_patch(desired_grants([{"group_name": "developers", "permission_level": "CAN_QUERY"}]), actual) is None
    body = grants_patch(desired_grants([{"group_name": "developers", "permission_level": "CAN_QUERY"},
                                        {"service_principal_name": "app-1", "permission_level": "CAN_MANAGE"}]), actual)
    assert body == {"access_control_list": [{"service_principal_name": "app-1", "permission_level": "CAN_MANAGE"}]}


def test_level_change_is_a_change():
    body = grants_patch(desired_grants([{"group_name": "developers", "permission_level": "CAN_VIEW"}]),
                        direct_grants(GET))
    assert body == {"access_control_list": [{"group_name": "developers", "permission_level": "CAN_VIEW"}]}


def test_purge_replaces_the_exact_list():
    actual = direct_grants(GET)
    desired = desired_grants([{"group_name": "developers", "permission_level": "CAN_QUERY"}])
    assert grants_replacement(desired, actual) == {
        "access_control_list": [{"group_name": "developers", "permission_level": "CAN_QUERY"}]}
    assert grants_replacement(actual, actual) is None


def test_check_mode_prediction_of_a_patch_keeps_other_grants_and_of_a_purge_does_not():
    actual = direct_grants(GET)
    desired = desired_grants([{"group_name": "developers", "permission_level": "CAN_VIEW"}])
    method, body, after = grants_update(desired, actual)
    assert (method, body) == ("PATCH", grants_patch(desired, actual))
    assert after == {("user_name", "admin@example.test"): "CAN_MANAGE", ("group_name", "developers"): "CAN_VIEW"}
    method, body, after = grants_update(desired, actual, purge=True)
    assert (method, body, after) == ("PUT", grants_replacement(desired, actual), desired)
