/**
 * @perch/agent: the agent core (identity, session, reconciler, updates, outbox, telemetry, commands,
 * systemd) and its seams. The pipeline code (agent/src/pipeline, agent/src/sources) adds its own exports.
 */
export { Agent, startAgent, AGENT_VERSION, type AgentOverrides } from './agent';
export { agentConfigSchema, loadAgentConfig, type AgentConfig } from './core/config';
export { agentPaths, DEFAULT_STATE_DIR, type AgentPaths } from './paths';
export {
  NoopPipelineHost,
  type ActiveModel,
  type PipelineHost,
  type PipelineHostDeps,
  type PipelineHostFactory,
} from './core/pipelines-port';
export { buildBundle, parseBundle, type BundleFiles } from './core/bundle';
