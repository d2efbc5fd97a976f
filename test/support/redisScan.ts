import type { Redis } from 'ioredis';

/** Every key in the store (SCAN, not KEYS, as production tooling would). */
export async function allKeys(client: Redis): Promise<string[]> {
  const out: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await client.scan(cursor, 'MATCH', '*', 'COUNT', 1000);
    cursor = next;
    out.push(...batch);
  } while (cursor !== '0');
  return out.sort();
}

/** A key's content as text (type-aware), for searching and comparing. */
export async function keyContent(client: Redis, key: string): Promise<string> {
  const type = await client.type(key);
  switch (type) {
    case 'string': return (await client.get(key)) ?? '';
    case 'hash': return Object.entries(await client.hgetall(key)).map(([f, v]) => `${f}=${v}`).sort().join('\n');
    case 'set': return (await client.smembers(key)).sort().join('\n');
    case 'zset': return (await client.zrange(key, 0, -1)).join('\n');
    case 'list': return (await client.lrange(key, 0, -1)).join('\n');
    case 'stream': return JSON.stringify(await client.xrange(key, '-', '+'));
    default: return '';
  }
}

/** Keys whose name or content mentions any of the needles: what an erasure test expects to be empty. */
export async function keysMentioning(client: Redis, needles: string[]): Promise<string[]> {
  const hits: string[] = [];
  for (const key of await allKeys(client)) {
    if (needles.some((n) => key.includes(n))) {
      hits.push(key);
      continue;
    }
    const content = await keyContent(client, key);
    if (needles.some((n) => content.includes(n))) hits.push(key);
  }
  return hits;
}

/** The whole store as key -> content (TTL-free), to show a refused request changed nothing. */
export async function snapshot(client: Redis, ignore: (key: string) => boolean = () => false): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const key of await allKeys(client)) {
    if (!ignore(key)) out.set(key, `${await client.type(key)}:${await keyContent(client, key)}`);
  }
  return out;
}
