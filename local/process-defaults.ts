/**
 * Process-wide defaults for running the handlers locally. `local/local-service.ts` (and the CLI,
 * `local/server.ts`) import this module
 * first: ES modules evaluate in import order, so these are set before `functions/core/powertools.ts`
 * creates its Metrics (which reads POWERTOOLS_METRICS_DISABLED once, when it is created).
 */
// CloudWatch EMF blobs after every request mean nothing locally and bury the log lines.
process.env.POWERTOOLS_METRICS_DISABLED ??= "true";
// Node 20 is supported locally on purpose (the Lambda runtime is Node 24): keep start-up readable.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
