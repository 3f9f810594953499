// secretWhenKnown: a known value stays secret; an unknown one (a preview before a generated secret
// exists) reaches the provider as a plain unknown, never as "secret, unknown".
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as pulumi from "@pulumi/pulumi";
import { unknown } from "@pulumi/pulumi/output";
import { secretWhenKnown } from "./secrets";

type Probe = { isKnown: Promise<boolean>; isSecret: Promise<boolean> };
const probe = (o: pulumi.Output<unknown>) => o as unknown as Probe;

describe("secretWhenKnown", () => {
  it("keeps a known value secret", async () => {
    const o = probe(secretWhenKnown(pulumi.secret("TOKEN=x")));
    assert.equal(await o.isKnown, true);
    assert.equal(await o.isSecret, true);
  });

  it("makes a plain value secret", async () => {
    assert.equal(await probe(secretWhenKnown("TOKEN=x")).isSecret, true);
  });

  it("turns a secret unknown into a plain unknown", async () => {
    const secretUnknown = pulumi.secret(pulumi.output(unknown as unknown as string));
    assert.equal(await probe(secretUnknown).isKnown, false);
    assert.equal(await probe(secretUnknown).isSecret, true);
    const o = probe(secretWhenKnown(secretUnknown));
    assert.equal(await o.isKnown, false);
    assert.equal(await o.isSecret, false);
  });
});
