//go:build !tfgen

// pulumi-resource-github: the Pulumi `github` provider, bridged from the upstream Terraform
// GitHub provider (github.com/integrations/terraform-provider-github/v6) with
// pulumi-terraform-bridge, for machines that cannot fetch the official plugin.
//
// Why it exists: the official provider's Go module (github.com/pulumi/pulumi-github/provider/v6)
// is not served by the module proxy these machines reach, so this module maps the same upstream
// provider to the same tokens itself. schema.json and bridge-metadata.json are generated
// before the build (go generate, see tfgen.go) and embedded.
//
//go:generate go run -trimpath -tags tfgen . schema --skip-examples --out .
package main

import (
	"bytes"
	_ "embed"
	"strconv"

	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfbridge"
)

// Version is stamped at build time (-X main.Version=6.15.0) to the SDK's plugin version.
var Version = "6.15.0"

//go:embed schema.json
var schema []byte

//go:embed bridge-metadata.json
var metadata []byte

func main() {
	tfbridge.Main("github", Version, providerInfo(Version, metadata), withVersion(schema, Version))
}

// withVersion puts the plugin version into the generated schema (tfgen leaves it out), so that
// `pulumi package get-schema` shows it.
func withVersion(schema []byte, version string) []byte {
	rest, ok := bytes.CutPrefix(bytes.TrimSpace(schema), []byte("{"))
	if !ok || version == "" {
		return schema
	}
	return append([]byte(`{"version":`+strconv.Quote(version)+`,`), rest...)
}
