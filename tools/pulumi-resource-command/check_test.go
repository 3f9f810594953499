package main

import (
	"context"
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/archive"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/asset"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/sig"
	"github.com/pulumi/pulumi/sdk/v3/go/property"
	"github.com/pulumi/pulumi/sdk/v3/go/propertyrpc"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/protobuf/types/known/structpb"
)

const copyURN = "urn:pulumi:dev::proj::command:remote:CopyToRemote::up"

// secretUnknown is how the engine sends an input that is both secret and unknown: a secret
// whose value is the unknown sentinel (propertyrpc.Marshal in pulumi/pulumi v3.274.1).
func secretUnknown() *structpb.Value {
	return structpb.NewStructValue(&structpb.Struct{Fields: map[string]*structpb.Value{
		sig.Key: structpb.NewStringValue(sig.Secret),
		"value": structpb.NewStringValue(sig.UnknownStringValue),
	}})
}

func engineInputs(fields map[string]*structpb.Value) *structpb.Struct {
	conn := structpb.NewStructValue(&structpb.Struct{Fields: map[string]*structpb.Value{
		sig.Key: structpb.NewStringValue(sig.Secret),
		"value": structpb.NewStructValue(&structpb.Struct{Fields: map[string]*structpb.Value{
			"host": structpb.NewStringValue("10.0.0.1"),
		}}),
	}})
	s := &structpb.Struct{Fields: map[string]*structpb.Value{"connection": conn}}
	for k, v := range fields {
		s.Fields[k] = v
	}
	return s
}

func check(t *testing.T, urn string, news *structpb.Struct) *pulumirpc.CheckResponse {
	t.Helper()
	resp, err := newServer(nil).Check(context.Background(), &pulumirpc.CheckRequest{Urn: urn, News: news})
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// Mirrors infer/apply_secrets.go:50-58 in pulumi/pulumi-go-provider v1.3.0 (the deferred
// MakeSecret runs last, on the unwrapped value, dropping the unknown), fed by
// infer/internal/ende/ende.go:184-194 and sdk v3.224.0 common/resource/property_compatibility.go:75
// (a secret unknown becomes an Output with a null element), marshalled with SkipNulls
// (provider.go:660 asStruct; sdk v3.224.0 plugin/rpc.go:213, MarshalProperties:86), so the
// engine's unmarshal refuses it: sdk/go/propertyrpc/unmarshal.go:133 in pulumi/pulumi v3.274.1,
// called on Check's answer at pkg/resource/plugin/provider_plugin.go:1272.
func TestCheckSecretUnknownTriggerIsSecretWithoutValue(t *testing.T) {
	triggers := structpb.NewListValue(&structpb.ListValue{Values: []*structpb.Value{
		structpb.NewStringValue("a"), structpb.NewStringValue("b"), secretUnknown(),
	}})
	resp := check(t, testURN, engineInputs(map[string]*structpb.Value{"triggers": triggers}))
	if len(resp.Failures) != 0 {
		t.Fatalf("failures: %v", resp.Failures)
	}
	third := resp.Inputs.Fields["triggers"].GetListValue().Values[2].GetStructValue()
	if third == nil || third.Fields[sig.Key].GetStringValue() != sig.Secret {
		t.Fatalf("triggers[2] = %v, want a secret", resp.Inputs.Fields["triggers"])
	}
	if _, has := third.Fields["value"]; has {
		t.Fatalf("triggers[2] has a value: %v", third)
	}
	_, err := propertyrpc.Unmarshal(resp.Inputs)
	if err == nil || err.Error() != "triggers[2]: malformed secret: missing value" {
		t.Fatalf("engine unmarshal: %v", err)
	}
}

// The same round trip for typed inputs: the ende decoder aligns the unknown to its Go type's
// zero (infer/internal/ende/ende.go:231-281; a struct gets its required fields, then
// infer/apply_defaults.go adds the defaults of connection.go:54-83), and apply_secrets.go:50-58
// leaves it a known secret. For a nested unknown secret inside a trigger the walk stops at the
// `any` (apply_secrets.go:123-125), so it stays an unknown secret.
func TestCheckSecretUnknownTypedInputsBecomeKnownZeroSecrets(t *testing.T) {
	nested := structpb.NewStructValue(&structpb.Struct{Fields: map[string]*structpb.Value{"a": secretUnknown()}})
	resp := check(t, testURN, &structpb.Struct{Fields: map[string]*structpb.Value{
		"connection":             secretUnknown(),
		"create":                 secretUnknown(),
		"addPreviousOutputInEnv": secretUnknown(),
		"environment":            secretUnknown(),
		"stdin":                  secretUnknown(),
		"triggers":               structpb.NewListValue(&structpb.ListValue{Values: []*structpb.Value{nested}}),
	}})
	if len(resp.Failures) != 0 {
		t.Fatalf("failures: %v", resp.Failures)
	}
	got, err := propertyrpc.Unmarshal(resp.Inputs)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]property.Value{
		"create":                 property.New("").WithSecret(true),
		"stdin":                  property.New("").WithSecret(true),
		"addPreviousOutputInEnv": property.New(false).WithSecret(true),
		"environment":            property.New(property.Map{}).WithSecret(true),
		"connection": property.New(map[string]property.Value{
			"host": property.New(""), "user": property.New("root"), "port": property.New(22.0),
			"dialErrorLimit": property.New(10.0), "perDialTimeout": property.New(15.0),
		}).WithSecret(true),
		"triggers": property.New([]property.Value{property.New(map[string]property.Value{
			"a": property.New(property.Computed).WithSecret(true),
		})}),
	}
	for k, w := range want {
		if g := got.Get(k); !g.Equals(w) {
			t.Errorf("%s = %v, want %v", k, g, w)
		}
	}
}

// An unknown that is not secret stays unknown (apply_secrets.go:55-58 re-wraps it); the
// connection, tagged provider:"secret" (command.go:46, copy.go:37), becomes an unknown secret
// (apply_secrets.go:97-100).
func TestCheckUnknownStaysUnknown(t *testing.T) {
	unknown := structpb.NewStringValue(sig.UnknownStringValue)
	resp := check(t, testURN, &structpb.Struct{Fields: map[string]*structpb.Value{
		"connection": unknown, "create": unknown,
		"triggers": structpb.NewListValue(&structpb.ListValue{Values: []*structpb.Value{unknown}}),
	}})
	got, err := propertyrpc.Unmarshal(resp.Inputs)
	if err != nil {
		t.Fatal(err)
	}
	if c := got.Get("connection"); !c.IsComputed() || !c.Secret() {
		t.Errorf("connection = %v, want an unknown secret", c)
	}
	if c := got.Get("create"); !c.IsComputed() || c.Secret() {
		t.Errorf("create = %v, want unknown", c)
	}
	if c := got.Get("triggers").AsArray().Get(0); !c.IsComputed() {
		t.Errorf("triggers[0] = %v, want unknown", c)
	}
}

// A known connection: the defaults of connection.go:54-83 (user root, port 22,
// dialErrorLimit 10, perDialTimeout 15; also for a proxy, proxyConnection.go:23-51) fill the
// unset fields only (infer/apply_defaults.go: only a zero field), password, privateKey and
// privateKeyPassword are secrets inside the secret connection (connection.go:43-47,
// apply_secrets.go:97-100), and dialErrorLimit is an int (connection.go:49), so a fraction is
// dropped (sdk v3.224.0 common/util/mapper/mapper_decode.go:150, ConvertibleTo).
func TestCheckConnectionSecretsAndDefaults(t *testing.T) {
	news := resource.PropertyMap{
		"create": resource.NewProperty("true"),
		"connection": resource.NewProperty(resource.PropertyMap{
			"host": resource.NewProperty("h"), "user": resource.NewProperty("deploy"),
			"password": resource.NewProperty("pw"), "privateKey": resource.NewProperty("KEY"),
			"dialErrorLimit": resource.NewProperty(2.7),
			"proxy":          resource.NewProperty(resource.PropertyMap{"host": resource.NewProperty("bastion")}),
		}),
	}
	out, fails := checkInputs(typeCommand, news)
	if len(fails) != 0 {
		t.Fatalf("failures: %v", fails)
	}
	conn := out["connection"]
	if !conn.IsSecret() {
		t.Fatalf("connection is not secret: %v", conn)
	}
	c := conn.SecretValue().Element.ObjectValue()
	wantPlain := map[resource.PropertyKey]resource.PropertyValue{
		"host": resource.NewProperty("h"), "user": resource.NewProperty("deploy"), "port": resource.NewProperty(22.0),
		"dialErrorLimit": resource.NewProperty(2.0), "perDialTimeout": resource.NewProperty(15.0),
	}
	for k, w := range wantPlain {
		if !c[k].DeepEquals(w) {
			t.Errorf("connection.%s = %v, want %v", k, c[k], w)
		}
	}
	for _, k := range []resource.PropertyKey{"password", "privateKey"} {
		if !c[k].IsSecret() {
			t.Errorf("connection.%s is not secret: %v", k, c[k])
		}
	}
	proxy := c["proxy"].ObjectValue()
	if !proxy["user"].DeepEquals(resource.NewProperty("root")) || !proxy["port"].DeepEquals(resource.NewProperty(22.0)) ||
		!proxy["dialErrorLimit"].DeepEquals(resource.NewProperty(10.0)) {
		t.Errorf("proxy defaults: %v", proxy)
	}
	if _, ok := out["stdin"]; ok {
		t.Errorf("an unset input appeared: %v", out)
	}
}

// Failures as the mapper words them (sdk v3.224.0 common/util/mapper/errors.go:111 missing,
// :135 unrecognized, :83 and :48 with mapper_decode.go:250 for a nested struct), and CopyToRemote's
// own checks (copyController.go:85-112 in pulumi/pulumi-command v1.2.1).
func TestCheckFailures(t *testing.T) {
	_, fails := checkInputs(typeCommand, resource.PropertyMap{
		"create": resource.NewProperty("x"), "bogus": resource.NewProperty(1.0),
	})
	got := failureText(fails)
	want := "connection: Missing required field 'connection' on 'remote.CommandInputs'\n" +
		"bogus: Unrecognized field 'bogus' on 'remote.CommandInputs'"
	if got != want {
		t.Errorf("failures:\n%s\nwant:\n%s", got, want)
	}

	_, fails = checkInputs(typeCommand, resource.PropertyMap{
		"connection": resource.MakeSecret(resource.NewProperty(resource.PropertyMap{"port": resource.NewProperty(22.0)})),
	})
	want = "connection: An error occurred decoding 'CommandInputs.connection': 1 failures decoding:\n" +
		"\thost: Missing required field 'host' on 'remote.Connection'"
	if got := failureText(fails); got != want {
		t.Errorf("failures:\n%s\nwant:\n%s", got, want)
	}

	conn := resource.MakeSecret(resource.NewProperty(resource.PropertyMap{"host": resource.NewProperty("h")}))
	cases := []struct {
		name   string
		source resource.PropertyValue
		want   string
	}{
		{"unknown source", unknownValue(), "asset: either asset or archive must be set"},
		{"secret unknown source", resource.MakeSecret(unknownValue()), "asset: either asset or archive must be set"},
		{"uri asset", resource.NewProperty(&asset.Asset{Sig: asset.AssetSig, URI: "https://example.com/x"}),
			"asset: asset must be a path-based file asset or a text asset"},
		{"asset archive", resource.NewProperty(&archive.Archive{Sig: archive.ArchiveSig,
			Assets: map[string]any{"a": &asset.Asset{Sig: asset.AssetSig, Text: "x"}}}),
			"archive: archive must be a path to a file or directory"},
		{"text asset", resource.NewProperty(&asset.Asset{Sig: asset.AssetSig, Text: "hello"}), ""},
		{"file asset", resource.NewProperty(&asset.Asset{Sig: asset.AssetSig, Path: "/etc/hostname"}), ""},
		{"file archive", resource.NewProperty(&archive.Archive{Sig: archive.ArchiveSig, Path: "/etc"}), ""},
	}
	for _, c := range cases {
		_, fails := checkInputs(typeCopy, resource.PropertyMap{
			"connection": conn, "remotePath": resource.NewProperty("/tmp/x"), "source": c.source,
		})
		if got := failureText(fails); got != c.want {
			t.Errorf("%s: failures %q, want %q", c.name, got, c.want)
		}
	}
	_, fails = checkInputs(typeCopy, resource.PropertyMap{"connection": conn})
	want = "source: Missing required field 'source' on 'remote.CopyToRemoteInputs'\n" +
		"remotePath: Missing required field 'remotePath' on 'remote.CopyToRemoteInputs'\n" +
		"asset: either asset or archive must be set"
	if got := failureText(fails); got != want {
		t.Errorf("failures:\n%s\nwant:\n%s", got, want)
	}
}

func failureText(fails []*pulumirpc.CheckFailure) string {
	var lines []string
	for _, f := range fails {
		lines = append(lines, f.Property+": "+f.Reason)
	}
	return strings.Join(lines, "\n")
}
