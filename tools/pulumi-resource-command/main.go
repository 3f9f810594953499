// pulumi-resource-command: a build of the two resources this project uses from the
// `command` package (command:remote:Command and command:remote:CopyToRemote), wire-compatible
// with the @pulumi/command 1.2.1 SDK, for machines that cannot fetch the official plugin.
//
// Why it exists: the official provider's Go module (github.com/pulumi/pulumi-command/provider)
// is untagged and its pseudo-versions are refused by the module proxy these machines reach, so
// it cannot be built here. On a machine with internet, `npm run setup` installs the official
// plugin instead (see scripts/setup.sh). Semantics follow the official documentation:
// triggers replace (the SDK sets replaceOnChanges), any other input change runs `update`
// (or `create` when `update` is unset), `delete` runs on delete, stdout/stderr are outputs,
// connection.hostKey pins the server key, CopyToRemote uploads a file asset over SFTP.
package main

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/common/diag"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/provider"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/structpb"
)

// Version is stamped at build time (-X main.Version=1.2.1) to the SDK's plugin version.
var Version = "1.2.1"

const (
	typeCommand = "command:remote:Command"
	typeCopy    = "command:remote:CopyToRemote"
)

var inputKeys = map[string][]string{
	typeCommand: {"addPreviousOutputInEnv", "connection", "create", "delete", "environment", "logging", "stdin", "triggers", "update"},
	typeCopy:    {"connection", "remotePath", "source", "triggers"},
}

type server struct {
	pulumirpc.UnimplementedResourceProviderServer
	host *provider.HostClient
}

func main() {
	err := provider.Main("command", func(host *provider.HostClient) (pulumirpc.ResourceProviderServer, error) {
		return &server{host: host}, nil
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

var marshalOpts = plugin.MarshalOptions{KeepUnknowns: true, KeepSecrets: true, SkipNulls: true, KeepResources: true}

func unmarshal(s *structpb.Struct) (resource.PropertyMap, error) {
	return plugin.UnmarshalProperties(s, marshalOpts)
}

func marshal(m resource.PropertyMap) (*structpb.Struct, error) {
	return plugin.MarshalProperties(m, marshalOpts)
}

func resourceType(urn string) string { return string(resource.URN(urn).Type()) }

func (s *server) GetPluginInfo(context.Context, *emptypb.Empty) (*pulumirpc.PluginInfo, error) {
	return &pulumirpc.PluginInfo{Version: Version}, nil
}

func (s *server) Handshake(context.Context, *pulumirpc.ProviderHandshakeRequest) (*pulumirpc.ProviderHandshakeResponse, error) {
	return &pulumirpc.ProviderHandshakeResponse{AcceptSecrets: true, AcceptResources: true}, nil
}

func (s *server) GetSchema(context.Context, *pulumirpc.GetSchemaRequest) (*pulumirpc.GetSchemaResponse, error) {
	return &pulumirpc.GetSchemaResponse{Schema: fmt.Sprintf(`{"name":"command","version":%q}`, Version)}, nil
}

func (s *server) CheckConfig(_ context.Context, req *pulumirpc.CheckRequest) (*pulumirpc.CheckResponse, error) {
	return &pulumirpc.CheckResponse{Inputs: req.GetNews()}, nil
}

func (s *server) DiffConfig(context.Context, *pulumirpc.DiffRequest) (*pulumirpc.DiffResponse, error) {
	return &pulumirpc.DiffResponse{Changes: pulumirpc.DiffResponse_DIFF_NONE}, nil
}

func (s *server) Configure(context.Context, *pulumirpc.ConfigureRequest) (*pulumirpc.ConfigureResponse, error) {
	return &pulumirpc.ConfigureResponse{AcceptSecrets: true, SupportsPreview: true, AcceptResources: true}, nil
}

func (s *server) Cancel(context.Context, *emptypb.Empty) (*emptypb.Empty, error) {
	return &emptypb.Empty{}, nil
}

// Check validates inputs; it keeps them as given (secrets included).
func (s *server) Check(_ context.Context, req *pulumirpc.CheckRequest) (*pulumirpc.CheckResponse, error) {
	news, err := unmarshal(req.GetNews())
	if err != nil {
		return nil, err
	}
	var failures []*pulumirpc.CheckFailure
	typ := resourceType(req.GetUrn())
	if _, ok := inputKeys[typ]; !ok {
		return nil, fmt.Errorf("unsupported resource type %s: this build implements %s and %s", typ, typeCommand, typeCopy)
	}
	conn := news["connection"]
	if conn.IsSecret() {
		conn = conn.SecretValue().Element
	}
	if !conn.IsObject() && !conn.IsComputed() && !conn.IsOutput() {
		failures = append(failures, &pulumirpc.CheckFailure{Property: "connection", Reason: "missing required property 'connection'"})
	}
	if typ == typeCopy {
		if _, ok := news["remotePath"]; !ok {
			failures = append(failures, &pulumirpc.CheckFailure{Property: "remotePath", Reason: "missing required property 'remotePath'"})
		}
		if _, ok := news["source"]; !ok {
			failures = append(failures, &pulumirpc.CheckFailure{Property: "source", Reason: "missing required property 'source'"})
		}
	}
	inputs, err := marshal(news)
	if err != nil {
		return nil, err
	}
	return &pulumirpc.CheckResponse{Inputs: inputs, Failures: failures}, nil
}

// Diff reports every changed input; a change to triggers replaces the resource.
func (s *server) Diff(_ context.Context, req *pulumirpc.DiffRequest) (*pulumirpc.DiffResponse, error) {
	olds, err := unmarshal(req.GetOlds())
	if err != nil {
		return nil, err
	}
	news, err := unmarshal(req.GetNews())
	if err != nil {
		return nil, err
	}
	ignored := map[string]bool{}
	for _, k := range req.GetIgnoreChanges() {
		ignored[k] = true
	}
	var diffs, replaces []string
	detailed := map[string]*pulumirpc.PropertyDiff{}
	for _, k := range inputKeys[resourceType(req.GetUrn())] {
		if ignored[k] {
			continue
		}
		o, okO := olds[resource.PropertyKey(k)]
		n, okN := news[resource.PropertyKey(k)]
		if !okO && !okN {
			continue
		}
		if okO && okN && !n.ContainsUnknowns() && o.DeepEquals(n) {
			continue
		}
		diffs = append(diffs, k)
		kind := pulumirpc.PropertyDiff_UPDATE
		if k == "triggers" {
			replaces = append(replaces, k)
			kind = pulumirpc.PropertyDiff_UPDATE_REPLACE
		}
		detailed[k] = &pulumirpc.PropertyDiff{Kind: kind, InputDiff: true}
	}
	sort.Strings(diffs)
	changes := pulumirpc.DiffResponse_DIFF_NONE
	if len(diffs) > 0 {
		changes = pulumirpc.DiffResponse_DIFF_SOME
	}
	return &pulumirpc.DiffResponse{
		Changes: changes, Diffs: diffs, Replaces: replaces,
		DetailedDiff: detailed, HasDetailedDiff: true,
	}, nil
}

func (s *server) Create(ctx context.Context, req *pulumirpc.CreateRequest) (*pulumirpc.CreateResponse, error) {
	news, err := unmarshal(req.GetProperties())
	if err != nil {
		return nil, err
	}
	outs, err := s.apply(ctx, req.GetUrn(), nil, news, req.GetPreview(), false)
	if err != nil {
		return nil, err
	}
	props, err := marshal(outs)
	if err != nil {
		return nil, err
	}
	id := ""
	if !req.GetPreview() {
		if id, err = resource.NewUniqueHex(resource.URN(req.GetUrn()).Name()+"-", 8, 0); err != nil {
			return nil, err
		}
	}
	return &pulumirpc.CreateResponse{Id: id, Properties: props}, nil
}

func (s *server) Update(ctx context.Context, req *pulumirpc.UpdateRequest) (*pulumirpc.UpdateResponse, error) {
	olds, err := unmarshal(req.GetOlds())
	if err != nil {
		return nil, err
	}
	news, err := unmarshal(req.GetNews())
	if err != nil {
		return nil, err
	}
	outs, err := s.apply(ctx, req.GetUrn(), olds, news, req.GetPreview(), true)
	if err != nil {
		return nil, err
	}
	props, err := marshal(outs)
	if err != nil {
		return nil, err
	}
	return &pulumirpc.UpdateResponse{Properties: props}, nil
}

func (s *server) Read(_ context.Context, req *pulumirpc.ReadRequest) (*pulumirpc.ReadResponse, error) {
	return &pulumirpc.ReadResponse{Id: req.GetId(), Properties: req.GetProperties(), Inputs: req.GetInputs()}, nil
}

func (s *server) Delete(ctx context.Context, req *pulumirpc.DeleteRequest) (*emptypb.Empty, error) {
	if resourceType(req.GetUrn()) != typeCommand {
		return &emptypb.Empty{}, nil // an uploaded file is left in place, as the official provider does
	}
	props, err := unmarshal(req.GetProperties())
	if err != nil {
		return nil, err
	}
	del := str(props, "delete")
	if del == "" {
		return &emptypb.Empty{}, nil
	}
	conn, err := parseConnection(props["connection"])
	if err != nil {
		return nil, err
	}
	implicit := map[string]string{}
	if boolOr(props, "addPreviousOutputInEnv", true) {
		implicit["PULUMI_COMMAND_STDOUT"] = str(props, "stdout")
		implicit["PULUMI_COMMAND_STDERR"] = str(props, "stderr")
	}
	outLog, errLog := s.loggers(ctx, req.GetUrn(), str(props, "logging"))
	_, err = run(ctx, conn, del, str(props, "stdin"), strMap(props, "environment"), implicit, outLog, errLog)
	return &emptypb.Empty{}, err
}

// apply runs a Command's create or update command, or a CopyToRemote upload.
func (s *server) apply(ctx context.Context, urn string, olds, news resource.PropertyMap, preview, update bool,
) (resource.PropertyMap, error) {
	outs := news.Copy()
	typ := resourceType(urn)
	if typ == typeCopy {
		if preview {
			return outs, nil
		}
		return outs, s.upload(ctx, news)
	}
	secret := news["create"].IsSecret() || news["update"].IsSecret() || news["stdin"].IsSecret() ||
		news["environment"].IsSecret()
	if preview {
		outs["stdout"] = resource.MakeComputed(resource.NewProperty(""))
		outs["stderr"] = resource.MakeComputed(resource.NewProperty(""))
		return outs, nil
	}
	cmd := str(news, "create")
	if update && str(news, "update") != "" {
		cmd = str(news, "update")
	}
	res := runResult{}
	if cmd != "" {
		conn, err := parseConnection(news["connection"])
		if err != nil {
			return nil, err
		}
		implicit := map[string]string{}
		if update && olds != nil && boolOr(news, "addPreviousOutputInEnv", true) {
			implicit["PULUMI_COMMAND_STDOUT"] = str(olds, "stdout")
			implicit["PULUMI_COMMAND_STDERR"] = str(olds, "stderr")
		}
		outLog, errLog := s.loggers(ctx, urn, str(news, "logging"))
		res, err = run(ctx, conn, cmd, str(news, "stdin"), strMap(news, "environment"), implicit, outLog, errLog)
		if err != nil {
			return nil, err
		}
	}
	outs["stdout"] = resource.NewProperty(res.Stdout)
	outs["stderr"] = resource.NewProperty(res.Stderr)
	if secret {
		outs["stdout"] = resource.MakeSecret(outs["stdout"])
		outs["stderr"] = resource.MakeSecret(outs["stderr"])
	}
	return outs, nil
}

func (s *server) upload(ctx context.Context, news resource.PropertyMap) error {
	conn, err := parseConnection(news["connection"])
	if err != nil {
		return err
	}
	src := unwrap(news["source"])
	if !src.IsAsset() {
		return fmt.Errorf("source: this build of the command provider uploads file assets " +
			"(pulumi.asset.FileAsset); archives are not supported")
	}
	p, ok := src.AssetValue().GetPath()
	if !ok {
		return fmt.Errorf("source: only file assets (pulumi.asset.FileAsset) are supported by this build")
	}
	return copyFile(ctx, conn, p, str(news, "remotePath"))
}

// loggers returns the line callbacks for stdout and stderr per the `logging` input
// (default stdoutAndStderr, as in the official provider).
func (s *server) loggers(ctx context.Context, urn, mode string) (func(string), func(string)) {
	logf := func(sev diag.Severity) func(string) {
		return func(line string) { _ = s.host.Log(ctx, sev, resource.URN(urn), line) }
	}
	switch mode {
	case "none":
		return nil, nil
	case "stdout":
		return logf(diag.Info), nil
	case "stderr":
		return nil, logf(diag.Info)
	default:
		return logf(diag.Info), logf(diag.Info)
	}
}

func unwrap(v resource.PropertyValue) resource.PropertyValue {
	for {
		switch {
		case v.IsSecret():
			v = v.SecretValue().Element
		case v.IsOutput():
			v = v.OutputValue().Element
		default:
			return v
		}
	}
}

func str(m resource.PropertyMap, k string) string {
	v := unwrap(m[resource.PropertyKey(k)])
	if v.IsString() {
		return v.StringValue()
	}
	return ""
}

func boolOr(m resource.PropertyMap, k string, def bool) bool {
	v := unwrap(m[resource.PropertyKey(k)])
	if v.IsBool() {
		return v.BoolValue()
	}
	return def
}

func strMap(m resource.PropertyMap, k string) map[string]string {
	out := map[string]string{}
	v := unwrap(m[resource.PropertyKey(k)])
	if !v.IsObject() {
		return out
	}
	for kk, vv := range v.ObjectValue() {
		vv = unwrap(vv)
		if vv.IsString() {
			out[string(kk)] = vv.StringValue()
		}
	}
	return out
}

func parseConnection(v resource.PropertyValue) (connection, error) {
	v = unwrap(v)
	if !v.IsObject() {
		return connection{}, fmt.Errorf("connection: expected an object")
	}
	m := v.ObjectValue()
	for _, unsupported := range []string{"proxy", "agentSocketPath"} {
		if u := unwrap(m[resource.PropertyKey(unsupported)]); !u.IsNull() {
			return connection{}, fmt.Errorf("connection.%s is not supported by this build of the command provider", unsupported)
		}
	}
	num := func(k string, def int) int {
		n := unwrap(m[resource.PropertyKey(k)])
		if n.IsNumber() {
			return int(n.NumberValue())
		}
		return def
	}
	c := connection{
		Host:               str(m, "host"),
		Port:               num("port", 22),
		User:               str(m, "user"),
		Password:           str(m, "password"),
		PrivateKey:         str(m, "privateKey"),
		PrivateKeyPassword: str(m, "privateKeyPassword"),
		HostKey:            str(m, "hostKey"),
		PerDialTimeout:     num("perDialTimeout", 15),
		DialErrorLimit:     num("dialErrorLimit", 10),
	}
	if c.User == "" {
		c.User = "root"
	}
	if strings.TrimSpace(c.Host) == "" {
		return connection{}, fmt.Errorf("connection.host is required")
	}
	return c, nil
}
