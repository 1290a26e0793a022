"""The parameters of a built nn.Module: init rules and edits applied, ties made, the parameter
table and init report, and parameter statistics. No Lightning."""
