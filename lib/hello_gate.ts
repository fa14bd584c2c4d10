// Agent sockets that have not proven who they are yet (routes/api/agent_gateway.ts).

/**
 * Bounds the sockets that opened without a token in the upgrade header (the token then
 * comes in hello). Such a socket costs the server a WebSocket and a timer before anything
 * proves who is on the other end, so there are few of them, few per peer address, and each
 * has a short time to say hello. Sockets with a verified header token are not counted.
 */
export class HelloGate {
  #total = 0;
  #perPeer = new Map<string, number>();

  constructor(
    readonly limits: { max: number; perPeer: number; helloTimeoutMs: number } = UNAUTHENTICATED_SOCKETS,
  ) {}

  /** Tokenless sockets awaiting hello now. */
  get size(): number {
    return this.#total;
  }

  /** Takes a place for a tokenless socket from `peer`; null when the process or the peer is full. */
  enter(peer: string): (() => void) | null {
    const mine = this.#perPeer.get(peer) ?? 0;
    if (this.#total >= this.limits.max || mine >= this.limits.perPeer) return null;
    this.#total++;
    this.#perPeer.set(peer, mine + 1);
    let left = false;
    return () => {
      if (left) return;
      left = true;
      this.#total--;
      const n = (this.#perPeer.get(peer) ?? 1) - 1;
      if (n <= 0) this.#perPeer.delete(peer);
      else this.#perPeer.set(peer, n);
    };
  }
}

/** Defaults of {@link HelloGate}: documented in docs/security.md. */
export const UNAUTHENTICATED_SOCKETS = { max: 16, perPeer: 2, helloTimeoutMs: 3000 };
