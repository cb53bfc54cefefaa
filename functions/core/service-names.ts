// Data only, no imports: lib/ (the CDK app) reads these at synth, so importing them must not
// construct a Logger, a client or anything else.

/** Service name on every log line and metric (overridable with POWERTOOLS_SERVICE_NAME). */
export const SERVICE_NAME = "elevenlabs-agent-sessions";
/** CloudWatch namespace of every metric; the CDK alarms use the same constant. */
export const METRICS_NAMESPACE = "ElevenlabsAgentSessions";
