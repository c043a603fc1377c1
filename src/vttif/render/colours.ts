/** Edge colours shared by the DOT and the SVG, so the two pictures of one inference agree. */
export const EDGE = '#24466b';
export const APPEARING = '#2a8a3a';
export const LEAVING = '#8a8a8a';
