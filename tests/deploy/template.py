"""deploy/aws/gatekeeper.yaml read as CloudFormation would, for given parameters.

A small evaluator of exactly the intrinsics the template uses (Ref, Fn::Sub,
Fn::GetAtt, Fn::If, Fn::Join, Fn::Split, Fn::Select and the condition functions):
a resource's own values stay symbolic ("${ReportBucket.Arn}"), so tests can say
exactly which resource a permission names. cfn-lint's decoder parses the YAML tags.
"""

from __future__ import annotations

import re
from pathlib import Path

from cfnlint.decode import decode

TEMPLATE = Path(__file__).resolve().parents[2] / "deploy" / "aws" / "gatekeeper.yaml"
PSEUDO = {"AWS::Region": "us-east-1", "AWS::AccountId": "123456789012", "AWS::Partition": "aws",
          "AWS::StackName": "gk"}
NO_VALUE = object()
REQUIRED_PARAMETERS = {"GatekeeperId": "gk-acme", "PortalOrigin": "https://portal.example",
                       "VendorKeys": "k1:" + "A" * 43, "CodeBucket": "artifacts", "CodeKey": "gk.zip"}


def load() -> dict:
    template, problems = decode(str(TEMPLATE))
    assert not problems, problems
    return template


class Stack:
    def __init__(self, attributes: dict[str, str] | None = None, **parameters: str):
        """`attributes`: values for some resources' attributes ("Res.Attr"), else symbolic."""
        self.attributes = attributes or {}
        self.template = load()
        declared = self.template["Parameters"]
        unknown = set(parameters) - set(declared)
        assert not unknown, unknown
        given = {**REQUIRED_PARAMETERS, **parameters}
        self.parameters = {name: str(given.get(name, spec.get("Default", ""))) for name, spec in declared.items()}
        for name, spec in declared.items():  # what CloudFormation itself refuses
            value = self.parameters[name]
            if "AllowedPattern" in spec:
                assert re.fullmatch(spec["AllowedPattern"], value), (name, value)
            if "AllowedValues" in spec:
                assert value in [str(v) for v in spec["AllowedValues"]], (name, value)
        self.conditions = {name: self._condition(body) for name, body in self.template["Conditions"].items()}
        self.resources = {name: body for name, body in self.template["Resources"].items()
                          if "Condition" not in body or self.conditions[body["Condition"]]}

    def resource(self, name: str) -> dict:
        """The resource's properties, resolved."""
        return self.resolve(self.resources[name].get("Properties", {}))

    def _condition(self, body) -> bool:
        (function, args), = body.items()
        if function == "Condition":
            return self._condition(self.template["Conditions"][args])
        if function == "Fn::Equals":
            left, right = (self.resolve(arg) for arg in args)
            return str(left) == str(right)
        if function == "Fn::Not":
            return not self._condition(args[0])
        if function == "Fn::And":
            return all(self._condition(arg) for arg in args)
        if function == "Fn::Or":
            return any(self._condition(arg) for arg in args)
        raise AssertionError(f"condition function {function} not understood")

    def resolve(self, node):
        if isinstance(node, list):
            return [value for value in (self.resolve(item) for item in node) if value is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (function, args), = node.items()
            if function == "Ref":
                return self._ref(args)
            if function == "Fn::GetAtt":
                assert args[0] in self.resources, f"GetAtt of {args[0]}, which this stack does not create"
                return self.attributes.get("%s.%s" % tuple(args), "${%s.%s}" % tuple(args))
            if function == "Fn::Sub":
                return re.sub(r"\$\{([^}]+)\}", lambda m: self._sub(m.group(1)), args)
            if function == "Fn::If":
                name, yes, no = args
                return self.resolve(yes if self.conditions[name] else no)
            if function == "Fn::Join":
                return args[0].join(self.resolve(args[1]))
            if function == "Fn::Split":
                return self.resolve(args[1]).split(args[0])
            if function == "Fn::Select":
                return self.resolve(args[1])[int(args[0])]
            assert not function.startswith("Fn::"), f"{function} not understood"
        return {key: value for key, value in ((k, self.resolve(v)) for k, v in node.items()) if value is not NO_VALUE}

    def _ref(self, name: str):
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in PSEUDO:
            return PSEUDO[name]
        if name in self.parameters:
            return self.parameters[name]
        assert name in self.resources, f"Ref to {name}, which this stack does not create"
        return "${%s}" % name

    def _sub(self, name: str) -> str:
        if name in PSEUDO:
            return PSEUDO[name]
        if name in self.parameters:
            return self.parameters[name]
        assert name.split(".")[0] in self.resources, f"Sub of {name}, which this stack does not create"
        return "${%s}" % name

    def role_statements(self) -> dict[str, dict]:
        [policy] = self.resource("GatekeeperRole")["Policies"]
        return {statement["Sid"]: statement for statement in policy["PolicyDocument"]["Statement"]}

    def environment(self) -> dict[str, str]:
        return {name: str(value) for name, value in
                self.resource("GatekeeperFunction")["Environment"]["Variables"].items()}
