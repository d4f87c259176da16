/**
 * The FT log channel: the primary's sender (log-channel/sender.ts) and the
 * backup's route (routes/log.ts), sharing only the frame codec.
 */
export { LogSender, type LogSenderOptions, type ChannelState } from './log-channel/sender.ts';
export { registerLogReceiver, type LogSink, type LogSession, type LogReceiverOptions } from './routes/log.ts';
