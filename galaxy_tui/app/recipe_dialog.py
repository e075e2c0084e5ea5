"""Choose a recipe (the experiments that reproduce one of the original workflows): each listed with what it trains,
the figure it should reach and the GPU time to expect; Enter writes it into experiments.toml."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList, Static
from textual.widgets.option_list import Option

from galaxy_tui.recipes.catalogue import RECIPES, Recipe


def recipe_prompt(recipe: Recipe) -> Text:
    first = recipe.experiments[0]
    text = Text.assemble((recipe.name, "bold"), f"  {recipe.summary}\n")
    text.append(f"target: {first.target}; {first.gpu_time} on one A100-class GPU (estimated)"
                + (f"; {len(recipe.experiments)} experiments" if len(recipe.experiments) > 1 else ""), style="dim")
    return text


class RecipeDialog(ModalScreen[str | None]):
    AUTO_FOCUS = "#recipe-list"
    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(self) -> None:
        super().__init__(id="recipe-dialog")

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide"):  # the list scrolls; the heading and the keys stay in sight
            yield Label("New experiments from a recipe: the original workflows, ready to reproduce", classes="question")
            yield OptionList(*(Option(recipe_prompt(recipe), id=recipe.name) for recipe in RECIPES.values()),
                             id="recipe-list")
            yield Static("Enter writes it into experiments.toml (with its dataset, if you have none of that name) · "
                         "Escape cancels", classes="hint")

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(event.option.id)
