// Error stacks as V8 formats them, without ts-node's source-map support. The Pulumi SDK captures an
// unlimited stack trace for every resource it registers (Resource.callsites: `new Error().stack`),
// and the source-map-support that ts-node installs maps each frame through the .js.map files of
// @pulumi/pulumi and @pulumi/command, reading and parsing them to do so: 0.15-0.2 s of every
// `pulumi up`, a no-op's included, for positions no one reads (issue 18). Stacks of an unexpected
// exception in the program then name the transpiled lines of infra/*.ts, which transpileOnly keeps
// close to the source. Imported first by index.ts, before any resource is made.
const errors: { prepareStackTrace?: unknown } = Error;
delete errors.prepareStackTrace;
export {};
