// Text on the map: one monospace font, so a label's width is its length times a
// constant and the layout can size nodes without a browser; escaping for HTML/SVG.

/** Sizes shared by the layout and the drawing. */
export const metrics = {
    titleSize: 12,
    lineSize: 11,
    badgeSize: 10,
    titleHeight: 16,
    lineHeight: 14,
    pad: 8,
    /** Advance of one character of the monospace font, per pixel of font size (DejaVu Sans Mono: 0.602). */
    advance: 0.61,
};

export const fontFamily = "'DejaVu Sans Mono', 'Liberation Mono', Menlo, Consolas, monospace";

export function textWidth(text: string, size: number, bold = false): number {
    return [...text].length * size * metrics.advance * (bold ? 1.02 : 1);
}

export function badgeWidth(state: string): number {
    return textWidth(state, metrics.badgeSize) + 10;
}

/** Escapes text for HTML and SVG content and attribute values. */
export function esc(text: string): string {
    return text.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);
}
