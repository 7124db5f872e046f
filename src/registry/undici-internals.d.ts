// undici's own modules that http.ts imports directly (undici ships no declarations for them; the
// types are applied from undici's public declarations there).
declare module 'undici/lib/dispatcher/agent.js' {
  const Agent: unknown;
  export default Agent;
}
declare module 'undici/lib/core/util.js' {
  const util: unknown;
  export default util;
}
