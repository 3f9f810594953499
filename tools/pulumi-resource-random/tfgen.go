//go:build tfgen

// The build-time generator (built with -tags tfgen): writes schema.json and
// bridge-metadata.json (and a Pulumi.yaml), which main.go embeds:
//
//	go run -trimpath -tags tfgen . schema --skip-examples --out .
//
// It is the bridge's tfgen; the docs come from the upstream module in the module cache.
package main

import (
	"os"
	"os/exec"
	"strings"

	pftfgen "github.com/pulumi/pulumi-terraform-bridge/v3/pkg/pf/tfgen"
)

func main() {
	prov := providerInfo("", nil)
	// Docs are read from the upstream module's directory (go list finds it in the module cache).
	if out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}",
		"github.com/terraform-providers/terraform-provider-random").Output(); err == nil {
		prov.UpstreamRepoPath = strings.TrimSpace(string(out))
	} else {
		os.Stderr.WriteString("gen: upstream module not found, docs are skipped: " + err.Error() + "\n")
	}
	pftfgen.Main("random", prov)
}
