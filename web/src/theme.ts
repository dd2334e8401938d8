/** Light and dark: CSS variables on <html data-theme>, chosen once and remembered. Views that draw on canvas read the colours here. */

export type Theme = 'light' | 'dark';
const KEY = 'kubenetprobe.theme';
const listeners: ((t: Theme) => void)[] = [];

export function currentTheme(): Theme {
  return document.documentElement.dataset['theme'] === 'dark' ? 'dark' : 'light';
}

export function setTheme(t: Theme): void {
  document.documentElement.dataset['theme'] = t;
  try {
    localStorage.setItem(KEY, t);
  } catch {
    /* private mode */
  }
  for (const l of listeners) l(t);
}

export function initTheme(param: string | null): Theme {
  let stored: string | null = null;
  try {
    stored = localStorage.getItem(KEY);
  } catch {
    /* private mode */
  }
  const t: Theme = param === 'dark' || param === 'light' ? param : stored === 'dark' || stored === 'light' ? stored : matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light';
  document.documentElement.dataset['theme'] = t;
  return t;
}

export function onTheme(l: (t: Theme) => void): void {
  listeners.push(l);
}

/** A CSS variable's value now. */
export function cssVar(name: string): string {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}
