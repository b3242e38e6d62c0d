import nexus_ray


def test_public_api_is_pinned_and_sorted() -> None:
    assert nexus_ray.__all__ == sorted(nexus_ray.__all__)
    assert nexus_ray.__all__ == [
        "AuthenticationError",
        "ConfigurationError",
        "ConflictError",
        "ExitCalledError",
        "HTTPRequestNode",
        "InputValidationError",
        "InvalidRequestError",
        "MergeNode",
        "Nexus",
        "NexusError",
        "Node",
        "NodeContext",
        "NodePolicy",
        "NotFoundError",
        "PayloadTooLargeError",
        "PermissionDeniedError",
        "PythonCodeNode",
        "RateLimitedError",
        "ResourcesUnavailableError",
        "RunResult",
        "RunStatus",
        "RuntimeUnavailableError",
        "ScalingPolicy",
        "ServerInfo",
        "Settings",
        "StoreUnavailableError",
        "SwitchNode",
        "Workflow",
        "WorkflowBuilder",
        "WorkflowError",
        "WorkflowNotFoundError",
        "__version__",
        "emit",
        "node",
        "progress",
    ]
    for name in nexus_ray.__all__:
        assert hasattr(nexus_ray, name)
