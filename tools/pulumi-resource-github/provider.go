// The mapping of the upstream Terraform GitHub provider
// (github.com/integrations/terraform-provider-github/v6) to the Pulumi package `github`, with
// the tokens the @pulumi/github SDK uses (github:index/repository:Repository, ...) and its
// config defaults, replacement and naming behaviour.

package main

import (
	"github.com/integrations/terraform-provider-github/v6/github"
	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfbridge"
	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfbridge/tokens"
	shimv2 "github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfshim/sdk-v2"
)

// upstreamVersion is the upstream module version (go.mod); the provider reports it to GitHub
// in its user agent.
const upstreamVersion = "v6.13.0"

// providerInfo returns the bridge's description of the provider. metadata is the content of
// bridge-metadata.json written by the generator (nil while generating it).
func providerInfo(version string, metadata []byte) tfbridge.ProviderInfo {
	p := shimv2.NewProvider(github.NewProvider(upstreamVersion, "")(),
		shimv2.WithPlanResourceChange(func(string) bool { return true }))
	forceNewRepoIDs := map[string]*tfbridge.SchemaInfo{"selected_repository_ids": {ForceNew: tfbridge.True()}}
	prov := tfbridge.ProviderInfo{
		P:                       p,
		Name:                    "github",
		Description:             "A Pulumi package for creating and managing github cloud resources.",
		Keywords:                []string{"pulumi", "github"},
		License:                 "Apache-2.0",
		Homepage:                "https://pulumi.io",
		Repository:              "https://github.com/pulumi/pulumi-github",
		TFProviderModuleVersion: "v6",
		GitHubOrg:               "integrations",
		Version:                 version,
		MetadataInfo:            tfbridge.NewProviderMetadata(metadata),
		Config: map[string]*tfbridge.SchemaInfo{
			"base_url": {Default: &tfbridge.DefaultInfo{
				EnvVars: []string{"GITHUB_BASE_URL"}, Value: "https://api.github.com/",
			}},
			"token": {Default: &tfbridge.DefaultInfo{EnvVars: []string{"GITHUB_TOKEN"}}, Secret: tfbridge.True()},
		},
		Resources: map[string]*tfbridge.ResourceInfo{
			"github_actions_environment_secret":     {DeleteBeforeReplace: true},
			"github_actions_organization_secret":    {Fields: forceNewRepoIDs},
			"github_codespaces_organization_secret": {Fields: forceNewRepoIDs},
			"github_dependabot_organization_secret": {Fields: forceNewRepoIDs},
			"github_repository_collaborator":        {DeleteBeforeReplace: true},
			"github_repository_deploy_key":          {DeleteBeforeReplace: true},
			"github_repository_autolink_reference":  {DeleteBeforeReplace: true},
			// A list in the @pulumi/github SDK (the official provider's bridge metadata keeps it so),
			// though upstream now has MaxItems: 1.
			"github_repository_environment": {Fields: map[string]*tfbridge.SchemaInfo{
				"reviewers": {MaxItemsOne: tfbridge.False()},
			}},
		},
		DataSources: map[string]*tfbridge.DataSourceInfo{
			// The one token that is not the standard one.
			"github_app": {Tok: "github:index/getGithubApp:getGithubApp"},
		},
		EnableZeroDefaultSchemaVersion: true,
	}
	prov.MustComputeTokens(tokens.SingleModule("github_", "index", tokens.MakeStandard("github")))
	prov.MustApplyAutoAliases()
	prov.SetAutonaming(255, "-")
	return prov
}
