"""Understanding: normalisation, intent matching, entity reading."""
