"""CloudFormation templates of the platform, one module per tier (see docs/hld.md)."""
