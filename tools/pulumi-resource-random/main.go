//go:build !tfgen

// pulumi-resource-random: the Pulumi `random` provider, bridged from the upstream Terraform
// random provider (github.com/terraform-providers/terraform-provider-random) with
// pulumi-terraform-bridge, for machines that cannot fetch the official plugin.
//
// Why it exists: the official provider's Go module (github.com/pulumi/pulumi-random/provider/v4)
// is not served by the module proxy these machines reach, so this module maps the same upstream
// provider to the same tokens itself. schema.json and bridge-metadata.json are generated
// before the build (go generate, see tfgen.go) and embedded.
//
//go:generate go run -trimpath -tags tfgen . schema --skip-examples --out .
package main

import (
	"bytes"
	"context"
	_ "embed"
	"strconv"

	pftfbridge "github.com/pulumi/pulumi-terraform-bridge/v3/pkg/pf/tfbridge"
)

// Version is stamped at build time (-X main.Version=4.21.2) to the SDK's plugin version.
var Version = "4.21.2"

//go:embed schema.json
var schema []byte

//go:embed bridge-metadata.json
var metadata []byte

func main() {
	pftfbridge.Main(context.Background(), "random", providerInfo(Version, metadata),
		pftfbridge.ProviderMetadata{PackageSchema: withVersion(schema, Version)})
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
