// Secret values on their way to the command provider.
import * as pulumi from "@pulumi/pulumi";

/**
 * `value` as a secret once it is known, and as a plain unknown while it is not (a preview before a
 * generated secret exists). The official command provider's Check (pulumi-go-provider v1.3.0,
 * infer/apply_secrets.go, secretsWalker.walk) turns an input that is both secret and unknown into
 * a secret with no value, which the engine refuses (`malformed secret: missing value`): the first
 * preview of a stack would fail. An unknown holds no value to protect; a known one stays secret.
 */
export function secretWhenKnown<T>(value: pulumi.Input<T>): pulumi.Output<T> {
  return pulumi.unsecret(pulumi.output(value)).apply((v) => pulumi.secret(v)) as pulumi.Output<T>;
}
