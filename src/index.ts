/**
 * The public surface of the kubenetprobe library. What is not exported here
 * is internal and may change.
 */
export { NetworkMonitor, DEFAULT_OPTIONS } from './monitor/network-monitor.js';
export type {
  NetworkMonitorOptions,
  NetworkMonitorEvents,
  AttachOptions,
  AttachedInterface,
  TcOptions,
  XdpChoice,
  EventProcessingOptions,
  FlowEvictInfo,
  FlowReadInfo,
} from './monitor/network-monitor.js';
export type {
  FlowKey,
  FlowStats,
  PacketInfo,
  SecurityEvent,
  PacketStats,
  InterfaceCounters,
  OutcomeCounts,
  LostEvents,
  MonitorEvent,
  IpFamily,
  Direction,
  ProtocolName,
  Hook,
  Outcome,
  Severity,
  Block,
  BlockChange,
} from './types.js';
export { DETECTORS, DEFAULT_DETECTOR_CONFIG } from './monitor/detectors.js';
export type { DetectorConfig, DetectorName } from './monitor/detectors.js';
export type { AttachHook, AttachMode } from './attach/attachment.js';
export {
  KubeNetProbeError,
  InterfaceNotFoundError,
  InvalidArgumentError,
  PermissionError,
  KernelUnsupportedError,
  ObjectFileError,
  VerifierError,
  AlreadyAttachedError,
  AttachError,
  ClosedError,
  SystemError,
} from './errors.js';
export type { ErrorCode } from './errors.js';
export { kernelFeatures } from './loader/features.js';
export type { KernelFeatures } from './loader/features.js';
