// WebSocket attach's transport, on the `ws` package: the handshake, frame
// parsing and control frames are its; what is ours is the bound on a
// message (frames reassembled beyond it close the connection with 1009).
// Stdin is paused while the runtime has not taken it (the caller pauses
// `ws`); output is never paused, the caller bounds what waits
// (`ws.bufferedAmount`).
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { type WebSocket, WebSocketServer } from 'ws';

/** A client message (stdin) larger than this closes the connection with 1009. */
const WEBSOCKET_MAX_MESSAGE = 1024 * 1024;
const server = new WebSocketServer({ noServer: true, maxPayload: WEBSOCKET_MAX_MESSAGE, perMessageDeflate: false, clientTracking: false });

export interface WebSocketPeer {
  readonly ws: WebSocket;
  /** Sends output as a text frame, as Docker's WebSocket attach did. */
  sendText(data: Buffer): void;
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
          if (ws.readyState === ws.OPEN) ws.send(data, { binary: false });
        },
      });
    });
  });
}
