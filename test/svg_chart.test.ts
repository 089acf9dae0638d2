/**
 * The SVG chart kit's axes (src/io/svg_chart.ts): a panel's x axis can carry named ticks
 * (categories, stage names) instead of numbers, and a given extent instead of the data's, so
 * categories 1 … n sit inside the frame. Positions are read back from the drawn SVG.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { PANEL, renderFigure } from "../src/io/svg_chart.ts";

/** The x position of the text element whose content is `text`, or undefined. */
function textX(svg: string, text: string): number | undefined {
  const match = svg.match(new RegExp(`<text x="([0-9.]+)"[^>]*>${text}</text>`));
  return match ? Number(match[1]) : undefined;
}

const left = PANEL.left, plotWidth = PANEL.width - PANEL.left - PANEL.right;

test("named x ticks replace the numeric ones, at their values", () => {
  const svg = renderFigure([{
    title: "t", xLabel: "arm", lines: [{ points: [[1, 5], [3, 7]], colour: "#000" }],
    xTicks: [{ value: 1, text: "first" }, { value: 2, text: "a < b" }, { value: 3, text: "third" }],
  }], { columns: 1 });
  assert.is(textX(svg, "first"), left);
  assert.is(textX(svg, "third"), left + plotWidth);
  assert.ok(svg.includes(">a &#60; b</text>"), "tick text is escaped");
  // The numeric ticks of [1, 3] (1, 1.5, 2, …) are not drawn.
  assert.is(textX(svg, "1.5"), undefined);
  assert.is(textX(svg, "2"), undefined);
});

test("xRange sets the x axis's extent", () => {
  const svg = renderFigure([{
    title: "t", xLabel: "arm", lines: [{ points: [[1, 5], [2, 7]], colour: "#000" }],
    xTicks: [{ value: 1, text: "one" }, { value: 2, text: "two" }], xRange: [0.5, 2.5],
  }], { columns: 1 });
  assert.is(textX(svg, "one"), left + plotWidth / 4);
  assert.is(textX(svg, "two"), left + (3 * plotWidth) / 4);
  const numeric = renderFigure([{ title: "t", xLabel: "x", lines: [{ points: [[0, 1], [10, 2]], colour: "#000" }], xRange: [0, 20] }], { columns: 1 });
  assert.is(textX(numeric, "10"), left + plotWidth / 2);
  assert.is(textX(numeric, "20"), left + plotWidth);
});

test.run();
