"""The receding-horizon controller and the executors it drives."""

from wattbit.control.controller import Controller, Decision
from wattbit.control.policies import POLICIES, Policy, policy

__all__ = ["POLICIES", "Controller", "Decision", "Policy", "policy"]
