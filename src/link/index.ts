/**
 * The chip link: protocol codec (COBS + CRC-32 frames, binary payloads), transports (serial port,
 * in-process serialport binding, TCP), the macro client behind the ChipLink interface, and the
 * reusable device-side endpoint (src/link/device) that emulators and test devices serve it with.
 */
export type { ChipLink, DeviceStateUnknown, InferResult, LinkEvent, LinkStats, OperationOptions, ProgramOptions, ProgramResult, ReadOptions } from './chip-link.js';
export { DeviceStateUnknownError } from './chip-link.js';
export { MacroClient, tileRegion, countStatuses } from './client.js';
export type { MacroClientOptions } from './client.js';
export { crc32 } from './crc32.js';
export { cobsDecode, cobsEncode, cobsMaxEncodedLength } from './cobs.js';
export { FrameDecoder, buildRawFrame, decodeWireFrame, encodeFrame, parseRawFrame, droppedFrames } from './frame.js';
export type { Frame, FrameErrorKind, DecoderStats } from './frame.js';
export * from './protocol.js';
export * from './messages.js';
export { NetworkProgramSchema, NETWORK_PROGRAM_FORMAT, PlacementSchema, WeightMatrixSchema, checkPlacementsFit } from './network-program.js';
export type { NetworkProgram, NetworkProgramInput, Placement } from './network-program.js';
export type { ByteChannel, ChannelHandlers, Transport } from './transport.js';
export { serialTransport, classifyOpenError, loadNativeBinding, DEFAULT_BAUD } from './transports/serial.js';
export type { SerialTransportOptions } from './transports/serial.js';
export { tcpTransport, parseTcpUrl } from './transports/tcp.js';
export { inProcessBinding, inProcessTransport } from './transports/in-process.js';
export type { InProcessDevice, InProcessConnection } from './transports/in-process.js';
export { transportFor } from './transports/open.js';
export { listPorts } from './ports.js';
export type { PortListing } from './ports.js';
export { DeviceEndpoint, DEFAULT_DEVICE_CONFIG, serveStream, serveTcp } from './device/index.js';
export type { DeviceEndpointOptions, MacroBackend, MacroIdentity, OperationContext, ProgramCells, ProgramJob } from './device/index.js';
