/** The key id inside a key ARN (`arn:aws:kms:<region>:<account>:key/<id>`), or the reference unchanged. */
export const keyIdOf = (ref: string): string => {
  const marker = ':key/';
  const at = ref.indexOf(marker);
  return ref.startsWith('arn:') && at >= 0 ? ref.slice(at + marker.length) : ref;
};

/** Whether two references (ids or ARNs) name the same key. */
export const sameKey = (a: string, b: string): boolean => keyIdOf(a) === keyIdOf(b);
