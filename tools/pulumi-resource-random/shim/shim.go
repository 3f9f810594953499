// Package shim exposes the upstream Terraform random provider (a Plugin Framework provider
// whose constructor lives in an internal package) to the bridge.
package shim

import (
	"github.com/hashicorp/terraform-plugin-framework/provider"
	upstream "github.com/terraform-providers/terraform-provider-random/internal/provider"
)

// New returns the upstream provider.
func New() provider.Provider { return upstream.New() }
