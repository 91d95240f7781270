/**
 * A data-path probe's TCP connection as a node Duplex stream (probe.ts ProbeSink/ProbeWriter), so
 * that node's TLS can run over uvs's own TCP client: `tls.connect({ socket: new ProbeSocket() })`
 * for an SSL_GET of a DR/TUN real server's VIP. Bytes written before the connection is up are
 * queued (TLS writes its ClientHello at once) and go out after the SYN-ACK; the server's bytes are
 * pushed as they come in order, its FIN ends the readable side. Destroying the socket resets the
 * connection (a no-op once the probe is over).
 */
import { Duplex } from 'node:stream';
import type { ProbeSink, ProbeWriter } from './probe.js';

export class ProbeSocket extends Duplex {
  private w: ProbeWriter | null = null;
  private queued: Buffer[] = [];

  /** Hand this to the probe (ProbeTarget.stream). */
  readonly sink: ProbeSink = {
    open: (w) => {
      this.w = w;
      for (const b of this.queued) w.write(b);
      this.queued = [];
    },
    data: (b) => { this.push(b); },
    end: () => { this.push(null); },
  };

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.w !== null) this.w.write(chunk);
    else this.queued.push(chunk);
    cb();
  }

  override _read(): void {
    // The probe pushes as segments arrive; nothing to pull.
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.w?.abort(err ? `closed: ${err.message}` : 'closed by the checker');
    this.w = null;
    cb(err);
  }
}
