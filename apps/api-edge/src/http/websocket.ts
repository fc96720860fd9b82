// WebSocket attach's transport, on the `ws` package: the handshake, frame
// parsing and control frames are its; what is ours is the bound on a
// message (frames reassembled beyond it close the connection with 1009) and
// flow control in both directions.
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { type WebSocket, WebSocketServer } from 'ws';

/** A client message (stdin) larger than this closes the connection with 1009. */
export const WEBSOCKET_MAX_MESSAGE = 1024 * 1024;
const server = new WebSocketServer({ noServer: true, maxPayload: WEBSOCKET_MAX_MESSAGE, perMessageDeflate: false, clientTracking: false });

export interface WebSocketPeer {
  readonly ws: WebSocket;
  /**
   * Sends output as a text frame, as Docker's WebSocket attach did. Returns
   * a promise when the client has not taken what was sent before, settled
   * once it has (or is gone), so the caller pauses its source meanwhile.
   */
  sendText(data: Buffer): Promise<void> | undefined;
}

/**
 * Completes the handshake of an upgrade request; undefined when the
 * handshake was refused (answered 400 by `ws` and the socket closed).
 */
export function acceptWebSocket(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<WebSocketPeer | undefined> {
  return new Promise((resolve) => {
    const refused = (): void => resolve(undefined);
    socket.once('close', refused);
    server.handleUpgrade(req, socket, head, (ws) => {
      socket.off('close', refused);
      resolve({
        ws,
        sendText(data) {
          if (ws.readyState !== ws.OPEN) return undefined;
          ws.send(data, { binary: false });
          if (!socket.writableNeedDrain) return undefined;
          return new Promise<void>((drained) => {
            const done = (): void => {
              socket.off('drain', done).off('close', done);
              drained();
            };
            socket.on('drain', done).on('close', done);
          });
        },
      });
    });
  });
}
