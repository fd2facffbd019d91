// YAML as a person writes it: plain keys in a fixed order, multi-line strings as literal
// blocks. (Debian 12's jsonnet 0.18 quotes every key in std.manifestYamlDoc.)
local order = [
  'apiVersion',
  'kind',
  'metadata',
  'spec',
  'name',
  'groups',
  'rules',
  'alert',
  'record',
  'expr',
  'for',
  'labels',
  'annotations',
  'summary',
  'description',
  'runbook_url',
];
local rank(key) =
  local at = std.find(key, order);
  if std.length(at) > 0 then at[0] else std.length(order);
local keys(object) = std.sort(std.objectFields(object), function(k) [rank(k), k]);
local plain(key) = key;
local letters = { [c]: true for c in std.stringChars('abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ') };
local wordChars = letters + { [c]: true for c in std.stringChars('0123456789_.-') };

// `value` at `indent`; `lead` replaces the indentation of its first line (an array item's
// "- "). Strings are never sliced: jsonnet 0.18 slices a string one character at a time.
local manifest(value, indent, lead) =
  local pad = std.repeat(' ', indent);
  local start(i) = if i == 0 then lead else pad;
  // A short word YAML reads as the same string is written plain; anything else single-quoted
  // (one line: multi-line strings are literal blocks).
  local word(v) =
    std.length(v) > 0 && std.length(v) <= 40
    && std.objectHas(letters, v[0])
    && std.length([c for c in std.stringChars(v) if !std.objectHas(wordChars, c)]) == 0
    && !std.member(['true', 'false', 'null', 'yes', 'no', 'on', 'off', 'y', 'n'],
                   std.asciiLower(v));
  local scalar(v) =
    if std.type(v) == 'string' then (if word(v) then v else "'" + std.strReplace(v, "'", "''") + "'")
    else std.toString(v);
  local entry(prefix, key, v) =
    if std.type(v) == 'object' || std.type(v) == 'array' then
      prefix + plain(key) + ':\n' + manifest(v, indent + 2, pad + '  ')
    else if std.type(v) == 'string' && std.length(std.split(v, '\n')) > 1 then
      local lines = std.split(v, '\n');
      local last = std.length(lines) - 1;
      // A string ending in a newline splits into a last empty line.
      local body = if lines[last] == '' then lines[:last] else lines;
      prefix + plain(key) + ': ' + (if lines[last] == '' then '|' else '|-') + '\n' +
      std.join('', [
        (if line == '' then '\n' else pad + '  ' + line + '\n')
        for line in body
      ])
    else
      prefix + plain(key) + ': ' + scalar(v) + '\n';
  if std.type(value) == 'object' then
    local fields = [k for k in keys(value) if value[k] != null];
    std.join('', [entry(start(i), fields[i], value[fields[i]]) for i in std.range(0, std.length(fields) - 1)])
  else
    std.join('', [manifest(v, indent + 2, pad + '- ') for v in value]);

{
  manifest(value):: manifest(value, 0, ''),
}
