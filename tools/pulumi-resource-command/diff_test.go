package main

import (
	"context"
	"reflect"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/asset"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

func conn(host string) resource.PropertyValue {
	return resource.MakeSecret(resource.NewProperty(resource.PropertyMap{
		"host": resource.NewProperty(host), "user": resource.NewProperty("root"), "port": resource.NewProperty(22.0),
		"privateKey": resource.MakeSecret(resource.NewProperty("KEY")),
	}))
}

func strs(ss ...string) resource.PropertyValue {
	arr := make([]resource.PropertyValue, len(ss))
	for i, s := range ss {
		arr[i] = resource.NewProperty(s)
	}
	return resource.NewProperty(arr)
}

func kinds(resp *pulumirpc.DiffResponse) map[string]pulumirpc.PropertyDiff_Kind {
	out := map[string]pulumirpc.PropertyDiff_Kind{}
	for k, v := range resp.DetailedDiff {
		out[k] = v.Kind
		if v.InputDiff {
			panic("the official default diff reports InputDiff false")
		}
	}
	return out
}

// Mirrors the default Diff of pulumi-go-provider v1.3.0 (infer/resource.go:1215-1251): an
// object diff of the old and new inputs, its detailed diff keyed by path (sdk plugin
// NewDetailedDiffFromObjectDiff, InputDiff false), a replace only where the path is an input
// tagged replaceOnChanges (infer/resource.go:1141-1146, 1228), and Diffs/Replaces listing the
// paths' heads (provider.go:169-220). A changed trigger element is therefore an update at
// "triggers[1]" (the SDK's replaceOnChanges ["triggers[*]"] makes the engine replace); triggers
// appearing as a whole is a replace; a connection change is an update.
func TestDiffAsOfficialDefault(t *testing.T) {
	base := resource.PropertyMap{
		"connection": conn("a"), "create": resource.NewProperty("x"), "triggers": strs("1", "2"),
	}
	cases := []struct {
		name     string
		olds     resource.PropertyMap
		change   func(resource.PropertyMap)
		changes  pulumirpc.DiffResponse_DiffChanges
		detailed map[string]pulumirpc.PropertyDiff_Kind
		diffs    []string
		replaces []string
	}{
		{"no change", base, func(resource.PropertyMap) {}, pulumirpc.DiffResponse_DIFF_NONE,
			map[string]pulumirpc.PropertyDiff_Kind{}, nil, nil},
		{"trigger element", base, func(m resource.PropertyMap) { m["triggers"] = strs("1", "3") },
			pulumirpc.DiffResponse_DIFF_SOME, map[string]pulumirpc.PropertyDiff_Kind{"triggers[1]": pulumirpc.PropertyDiff_UPDATE},
			[]string{"triggers"}, nil},
		{"trigger added to the list", base, func(m resource.PropertyMap) { m["triggers"] = strs("1", "2", "3") },
			pulumirpc.DiffResponse_DIFF_SOME, map[string]pulumirpc.PropertyDiff_Kind{"triggers[2]": pulumirpc.PropertyDiff_ADD},
			[]string{"triggers"}, nil},
		{"triggers set where there were none", resource.PropertyMap{"connection": conn("a"), "create": resource.NewProperty("x")},
			func(resource.PropertyMap) {}, pulumirpc.DiffResponse_DIFF_SOME,
			map[string]pulumirpc.PropertyDiff_Kind{"triggers": pulumirpc.PropertyDiff_ADD_REPLACE},
			[]string{"triggers"}, []string{"triggers"}},
		{"connection", base, func(m resource.PropertyMap) { m["connection"] = conn("b") },
			pulumirpc.DiffResponse_DIFF_SOME, map[string]pulumirpc.PropertyDiff_Kind{"connection": pulumirpc.PropertyDiff_UPDATE},
			[]string{"connection"}, nil},
		{"create removed, update added", base, func(m resource.PropertyMap) {
			delete(m, "create")
			m["update"] = resource.NewProperty("y")
		}, pulumirpc.DiffResponse_DIFF_SOME, map[string]pulumirpc.PropertyDiff_Kind{
			"create": pulumirpc.PropertyDiff_DELETE, "update": pulumirpc.PropertyDiff_ADD,
		}, []string{"create", "update"}, nil},
		{"unknown create", base, func(m resource.PropertyMap) { m["create"] = unknownValue() },
			pulumirpc.DiffResponse_DIFF_SOME, map[string]pulumirpc.PropertyDiff_Kind{"create": pulumirpc.PropertyDiff_UPDATE},
			[]string{"create"}, nil},
	}
	for _, c := range cases {
		news := base.Copy()
		c.change(news)
		resp := diffInputs(c.olds, news, c.olds, nil)
		if resp.Changes != c.changes || !resp.HasDetailedDiff || !reflect.DeepEqual(kinds(resp), c.detailed) ||
			!reflect.DeepEqual(resp.Diffs, c.diffs) || !reflect.DeepEqual(resp.Replaces, c.replaces) {
			t.Errorf("%s: got changes=%v detailed=%v diffs=%v replaces=%v", c.name, resp.Changes, kinds(resp), resp.Diffs, resp.Replaces)
		}
	}
}

// For a CopyToRemote a connection change alone is an update too (the same default diff);
// copyController.go:148 then decides there is nothing to upload (see TestCopyUpdateUploadsOnlyWhenSourceOrPathChanged).
func TestDiffCopyConnectionIsUpdate(t *testing.T) {
	src := resource.NewProperty(&asset.Asset{Sig: asset.AssetSig, Path: "/x", Hash: "abc"})
	olds := resource.PropertyMap{"connection": conn("a"), "source": src, "remotePath": resource.NewProperty("/r")}
	news := olds.Copy()
	news["connection"] = conn("b")
	resp := diffInputs(olds, news, olds, nil)
	if !reflect.DeepEqual(kinds(resp), map[string]pulumirpc.PropertyDiff_Kind{"connection": pulumirpc.PropertyDiff_UPDATE}) ||
		resp.Replaces != nil {
		t.Errorf("got %v replaces %v", kinds(resp), resp.Replaces)
	}
}

// pulumi sdk v3.224.0 (the official build's) common/resource/properties_diff.go:214-216 counts
// an object property whose new value is an Output (a secret unknown, after
// property_compatibility.go:75) as unchanged; ignoreChanges take the state's value and
// "version"/"__" keys are dropped from the news (infer/resource.go:1159-1172).
func TestDiffUnknownSecretInObjectIsUnchangedAndIgnoreChanges(t *testing.T) {
	obj := func(v resource.PropertyValue) resource.PropertyValue {
		return resource.NewProperty([]resource.PropertyValue{resource.NewProperty(resource.PropertyMap{"a": v})})
	}
	olds := resource.PropertyMap{"connection": conn("a"), "triggers": obj(resource.NewProperty("x"))}
	news := resource.PropertyMap{"connection": conn("a"), "triggers": obj(resource.MakeSecret(unknownValue())),
		"__defaults": resource.NewProperty([]resource.PropertyValue{})}
	if resp := diffInputs(olds, news, olds, nil); resp.Changes != pulumirpc.DiffResponse_DIFF_NONE {
		t.Errorf("nested unknown secret: %v", kinds(resp))
	}
	// In an array the element is compared and differs.
	news["triggers"] = resource.NewProperty([]resource.PropertyValue{resource.MakeSecret(unknownValue())})
	if resp := diffInputs(olds, news, olds, nil); resp.Changes != pulumirpc.DiffResponse_DIFF_SOME {
		t.Errorf("array element unknown secret: no change")
	}
	news = resource.PropertyMap{"connection": conn("b"), "triggers": obj(resource.NewProperty("x"))}
	if resp := diffInputs(olds, news, olds, []string{"connection"}); resp.Changes != pulumirpc.DiffResponse_DIFF_NONE {
		t.Errorf("ignoreChanges: %v", kinds(resp))
	}
}

// Without old inputs from the engine, Diff compares the state's values of the input
// properties (infer/resource.go:1195-1213); the engine says whether it sends them in
// Configure (provider.go:780).
func TestDiffOldInputsFromStateWithoutEngineSupport(t *testing.T) {
	s := newServer(nil)
	state := resource.PropertyMap{"connection": conn("a"), "create": resource.NewProperty("x"),
		"stdout": resource.NewProperty("out")}
	st, _ := marshal(state)
	news, _ := marshal(resource.PropertyMap{"connection": conn("a"), "create": resource.NewProperty("x")})
	resp, err := s.Diff(context.Background(), &pulumirpc.DiffRequest{Urn: testURN, Olds: st, News: news})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Changes != pulumirpc.DiffResponse_DIFF_NONE {
		t.Errorf("stdout counted as an input: %v", resp.DetailedDiff)
	}
	if _, err := s.Configure(context.Background(), &pulumirpc.ConfigureRequest{SendsOldInputs: true, SendsOldInputsToDelete: true}); err != nil {
		t.Fatal(err)
	}
	oldInputs, _ := marshal(resource.PropertyMap{"connection": conn("a"), "create": resource.NewProperty("y")})
	resp, err = s.Diff(context.Background(), &pulumirpc.DiffRequest{Urn: testURN, Olds: st, News: news, OldInputs: oldInputs})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(resp.Diffs, []string{"create"}) {
		t.Errorf("with old inputs: %v", resp.DetailedDiff)
	}
}
