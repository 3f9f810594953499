// A module path under terraform-provider-random, so that Go's internal-package rule lets
// this package import the upstream provider's internal/provider package.
module github.com/terraform-providers/terraform-provider-random/shim

go 1.25.8

require github.com/terraform-providers/terraform-provider-random v1.3.2-0.20260824155315-e1092b0cfc07
