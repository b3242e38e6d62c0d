"""The quickstart app: `nexus serve examples/quickstart.py` (or `make run`).

Four workflows, all working offline:
- double_plus_one: x -> 2x -> 2x+1 with two PythonCodeNodes.
- greet: a typed function as a one-node workflow.
- route_order: a SwitchNode sending an order to one of two branches (the other is skipped).
- check_health: an HTTPRequestNode calling a URL (e.g. this app's own /health) and a check.
"""

from nexus_ray import Nexus, WorkflowBuilder

app = Nexus()

# 1. double_plus_one ---------------------------------------------------------------------
double_plus_one = WorkflowBuilder(description="Double x, then add one.")
double_plus_one.add_node("PythonCodeNode", "double", {"code": "result = {'value': x * 2}"})
double_plus_one.add_node("PythonCodeNode", "add_one", {"code": "result = {'value': value + 1}"})
double_plus_one.add_connection("double", "result.value", "add_one", "value")
app.register("double_plus_one", double_plus_one)


# 2. a typed function -----------------------------------------------------------------------
@app.workflow
def greet(name: str, excited: bool = False) -> str:
    """Say hello to someone."""
    return f"Hello, {name}{'!' if excited else '.'}"


# 3. a switch ---------------------------------------------------------------------------------
route_order = WorkflowBuilder(description="Orders of 100 or more need approval; others ship at once.")
route_order.add_node("SwitchNode", "route", {"condition_field": "amount", "operator": ">=", "value": 100})
route_order.add_node("PythonCodeNode", "needs_approval", {"code": "result = {'action': 'approve', 'order': order}"})
route_order.add_node("PythonCodeNode", "ship", {"code": "result = {'action': 'ship', 'order': order}"})
route_order.add_connection("route", "true_output", "needs_approval", "order")
route_order.add_connection("route", "false_output", "ship", "order")
app.register("route_order", route_order)

# 4. HTTP -------------------------------------------------------------------------------------
check_health = WorkflowBuilder(description="GET a URL (e.g. http://127.0.0.1:8000/health) and report if it is healthy.")
check_health.add_node("HTTPRequestNode", "fetch", {"timeout": 5.0})
check_health.add_node("PythonCodeNode", "verdict", {"code": "result = {'healthy': status == 200, 'status': status}"})
check_health.add_connection("fetch", "status", "verdict", "status")
app.register("check_health", check_health)
