/**
 * Runs `create` once per client and process: concurrent callers share the call in flight, and a call that
 * failed is forgotten, so the next caller tries again.
 */
export function once<K extends object>(
  done: WeakMap<K, Promise<void>>,
  client: K,
  create: () => Promise<unknown>,
): Promise<void> {
  let ready = done.get(client);
  if (!ready) {
    const attempt = create().then(() => undefined);
    attempt.catch(() => {
      if (done.get(client) === attempt) done.delete(client);
    });
    done.set(client, attempt);
    ready = attempt;
  }
  return ready;
}
