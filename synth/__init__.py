"""altcap synth: labelled images generated on purpose from prompts, ranked by CLIP (issue 21)."""
